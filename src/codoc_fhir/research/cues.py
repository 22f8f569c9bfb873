"""Qualifier cue lists handed to edsnlp's negation, hypothesis and family pipes.

edsnlp ships French cues (AP-HP's clinical notes); for French we keep them and only add a
few family and termination adjustments measured on tests/research/corpus_fr.jsonl. For
English the same pipes run with the English lists below (NegEx / ConText style cues), the
French verb conjugation tables switched off. Cues are matched on the normalised text
(lower case, no accents), so they are written that way.
"""

from __future__ import annotations

from typing import Any

from edsnlp.pipes.qualifiers.family import patterns as family_fr
from edsnlp.pipes.qualifiers.hypothesis import patterns as hypothesis_fr
from edsnlp.pipes.terminations import termination as termination_fr

FRENCH_FAMILY_EXTRA = ["antecedents familiaux de", "chez sa mere", "chez son pere", "famille"]

# A family cue reaches across commas and "avec" ("mère avec diabète"), a negation does not.
FRENCH_FAMILY_TERMINATION = [t for t in termination_fr if t not in (",", "avec", "et")]

ENGLISH_TERMINATION = [
    "but",
    "however",
    "although",
    "though",
    "yet",
    "except",
    "apart from",
    "aside from",
    "whereas",
    "while",
    "which",
    "who",
    "given",
    "due to",
    "because",
    "since",
    "and",
    ".",
    ";",
    ",",
    "...",
    "(",
    ")",
]

# edsnlp conjugates its French cue verbs, and an empty list means "every verb it knows"
# (including "a", "est"): English text gets one French verb of the right meaning whose
# forms never occur in English.
NO_VERBS_NEGATION = ["infirmer"]
NO_VERBS_HYPOTHESIS = ["suspecter"]

ENGLISH_NEGATION: dict[str, Any] = {
    "pseudo": [
        "no increase",
        "no change",
        "not only",
        "not ruled out",
        "cannot be ruled out",
        "can not be ruled out",
        "not be excluded",
        "no further",
    ],
    "preceding": [
        "no",
        "not",
        "denies",
        "denied",
        "deny",
        "without",
        "absence of",
        "absent",
        "negative for",
        "free of",
        "no evidence of",
        "no sign of",
        "no signs of",
        "never had",
        "never",
        "ruled out",
        "rules out",
        "excluded",
        "nor",
    ],
    "following": [
        "was ruled out",
        "has been ruled out",
        "is ruled out",
        "ruled out",
        "is absent",
        "was absent",
        "absent",
        "was negative",
        "is negative",
        "not found",
        "was excluded",
        "excluded",
        "unlikely",
    ],
    "preceding_regex": [],
    "verbs": NO_VERBS_NEGATION,
    "termination": ENGLISH_TERMINATION,
}

ENGLISH_HYPOTHESIS: dict[str, Any] = {
    "pseudo": ["no doubt", "without doubt", "possible side effects"],
    "preceding": [
        "possible",
        "possibly",
        "probable",
        "probably",
        "suspected",
        "suspicion of",
        "suspect",
        "suspicious for",
        "rule out",
        "r/o",
        "may have",
        "might have",
        "could be",
        "likely",
        "questionable",
        "cannot be ruled out",
        "cannot rule out",
        "concern for",
        "evaluate for",
        "to exclude",
        "in case of",
        "if",
        "presumed",
        "presumably",
        "hypothesis of",
    ],
    "following": [
        "is suspected",
        "was suspected",
        "is possible",
        "cannot be excluded",
        "cannot be ruled out",
        "is likely",
        "is probable",
        "to be confirmed",
        "?",
    ],
    "verbs_eds": NO_VERBS_HYPOTHESIS,
    "verbs_hyp": NO_VERBS_HYPOTHESIS,
    "termination": ENGLISH_TERMINATION,
}

ENGLISH_FAMILY: dict[str, Any] = {
    "family": [
        "mother",
        "father",
        "brother",
        "brothers",
        "sister",
        "sisters",
        "sibling",
        "siblings",
        "parent",
        "parents",
        "grandmother",
        "grandfather",
        "grandparents",
        "aunt",
        "uncle",
        "cousin",
        "son",
        "daughter",
        "family history",
        "family history of",
        "familial",
        "family",
    ],
    "termination": [t for t in ENGLISH_TERMINATION if t not in (",", "and")],
}

FRENCH_NEGATION: dict[str, Any] = {}
FRENCH_HYPOTHESIS: dict[str, Any] = {
    "following": [*hypothesis_fr.following, "est evoque", "est evoquee", "evoquee", "evoque"]
}
FRENCH_FAMILY: dict[str, Any] = {
    "family": [*family_fr.family, *FRENCH_FAMILY_EXTRA],
    "termination": FRENCH_FAMILY_TERMINATION,
}

CUES: dict[str, tuple[dict[str, Any], dict[str, Any], dict[str, Any]]] = {
    "french": (FRENCH_NEGATION, FRENCH_HYPOTHESIS, FRENCH_FAMILY),
    "english": (ENGLISH_NEGATION, ENGLISH_HYPOTHESIS, ENGLISH_FAMILY),
}
