"""Concept matching with qualifiers, on edsnlp (no database, no HTTP here).

One edsnlp pipeline per thesaurus version and language: sentences, normalizer (lower
case, accents folded, so the matcher is case and accent insensitive), a term matcher with
every concept's display and its plural forms, then the negation, hypothesis and family
qualifiers. Building it costs far more than running it, so `cached_extractor` keeps the
last few.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

LANGUAGES = ("french", "english")
CACHE_SIZE = 4
SENTENCE_END = re.compile(r"(?<=[.!?\n])\s+")
WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Concept:
    """A thesaurus concept to look for: its row number, code and the terms naming it."""

    num: int
    code: str
    terms: tuple[str, ...]


@dataclass(frozen=True)
class Finding:
    """The mentions of one concept in a document sharing one set of qualifiers."""

    concept_num: int
    negation: bool
    hypothesis: bool
    family: bool
    text: str  # the first mention, as written
    count: int


# --- plural forms ------------------------------------------------------------------------


def _plural_fr(word: str) -> str:
    if word[-1:] in ("s", "x", "z") or len(word) < 3:
        return word
    if word.endswith("al"):
        return word[:-2] + "aux"
    if word.endswith(("eau", "au", "eu")):
        return word + "x"
    return word + "s"


def _plural_en(word: str) -> str:
    if len(word) < 3:
        return word
    if word.endswith(("s", "x", "z", "ch", "sh")):
        return word + "es"
    if word.endswith("y") and word[-2:-1] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


def term_variants(term: str, language: str) -> list[str]:
    """The term, every word in the plural, and only the head word in the plural (the first
    in French, "cancers du sein"; the last in English, "chest pains"): edsnlp matches
    normalised tokens, a blank pipeline has no lemmatiser."""
    plural = _plural_fr if language == "french" else _plural_en
    words = term.split()
    if not words:
        return []
    skip = {"de", "du", "des", "d'", "la", "le", "les", "of", "the", "a", "an", "and", "et"}
    every = [word if word.lower() in skip else plural(word) for word in words]
    if language == "french":
        head = [plural(words[0]), *words[1:]]
    else:
        head = [*words[:-1], plural(words[-1])]
    return list(dict.fromkeys([" ".join(words), " ".join(every), " ".join(head)]))


# --- the pipeline ------------------------------------------------------------------------


def build_nlp(concepts: Sequence[Concept], language: str) -> Any:
    """The edsnlp pipeline matching `concepts` in `language` text."""
    # Imported on first use, not with the module: loading spaCy and edsnlp (the cue lists
    # build on edsnlp's own) takes 1.5 to 3 s, which every server start and worker would
    # pay though few requests extract. No import cycle is involved.
    import edsnlp
    import edsnlp.pipes as eds

    from codoc_fhir.research.cues import CUES

    if language not in LANGUAGES:
        raise ValueError(f"unknown text language {language!r}")
    negation, hypothesis, family = CUES[language]
    terms: dict[str, list[str]] = {}
    for concept in concepts:
        variants = [v for term in concept.terms for v in term_variants(term, language)]
        if variants:
            terms[str(concept.num)] = list(dict.fromkeys(variants))
    nlp = edsnlp.blank("eds")
    nlp.add_pipe(eds.sentences())
    nlp.add_pipe(eds.normalizer())
    if terms:
        nlp.add_pipe(eds.matcher(terms=terms, attr="NORM"))
    nlp.add_pipe(eds.negation(**negation))
    nlp.add_pipe(eds.hypothesis(**hypothesis))
    nlp.add_pipe(eds.family(use_sections=False, **family))
    return nlp


def fold(text: str) -> str:
    """Lower case without accents, as the normalizer's NORM attribute compares words."""
    decomposed = unicodedata.normalize("NFKD", text.lower().replace("œ", "oe").replace("æ", "ae"))
    return "".join(char for char in decomposed if not unicodedata.combining(char))


class Extractor:
    """Finds the concepts of one thesaurus version in texts.

    Most sentences of a clinical note name no concept of the thesaurus: only those holding
    the first word of some term go through edsnlp (qualifiers are scoped to a sentence, so
    the answer is the same), which is what makes a thousand-concept thesaurus fast.
    """

    def __init__(self, concepts: Sequence[Concept], language: str) -> None:
        self.concepts = {concept.num: concept for concept in concepts}
        self.language = language
        self.nlp = build_nlp(concepts, language)
        self.first_words = {
            words[0]
            for concept in concepts
            for term in concept.terms
            for variant in term_variants(term, language)
            if (words := WORD.findall(fold(variant)))
        }

    def candidate_text(self, text: str) -> str:
        """The sentences of `text` that may name a concept, one a line."""
        kept = [
            sentence
            for sentence in SENTENCE_END.split(text)
            if not self.first_words.isdisjoint(WORD.findall(fold(sentence)))
        ]
        return "\n".join(kept)

    def find(self, text: str) -> list[Finding]:
        candidates = self.candidate_text(text)
        return self.findings(self.nlp(candidates)) if candidates else []

    def find_many(self, texts: Iterable[str]) -> list[list[Finding]]:
        return [self.find(text) for text in texts]

    @staticmethod
    def findings(doc: Any) -> list[Finding]:
        """Mentions grouped by (concept, negation, hypothesis, family), in text order."""
        groups: dict[tuple[int, bool, bool, bool], list[str]] = {}
        for ent in doc.ents:
            if not ent.label_.isdigit():
                continue
            key = (
                int(ent.label_),
                bool(ent._.negation),
                bool(ent._.hypothesis),
                bool(ent._.family),
            )
            groups.setdefault(key, []).append(ent.text)
        return [
            Finding(num, negated, hypothetical, familial, found[0], len(found))
            for (num, negated, hypothetical, familial), found in groups.items()
        ]


_cache: OrderedDict[Hashable, Extractor] = OrderedDict()
_cache_lock = threading.Lock()


def cached_extractor(key: Hashable, concepts: Any, language: str) -> Extractor:
    """The extractor for `key` (thesaurus, version, language); `concepts()` is called to
    build it only when it is not cached. The lock keeps two threads from building one."""
    with _cache_lock:
        found = _cache.get(key)
        if found is not None:
            _cache.move_to_end(key)
            return found
        extractor = Extractor(concepts(), language)
        _cache[key] = extractor
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
        return extractor
