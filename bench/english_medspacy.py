"""medspaCy's ConText on the English corpora, for comparison with the edsnlp pipeline
configured with English cues (docs/RESEARCH.md). medspaCy is not a dependency of the
project: run this from a virtual environment where it is installed:

    python -m venv /tmp/msvenv && /tmp/msvenv/bin/pip install medspacy
    /tmp/msvenv/bin/python bench/english_medspacy.py

Same scoring as tests/research/evaluation.py: per note, the set of (concept, negation,
hypothesis, family); concept F1 on the concepts alone, full F1 on the whole tuples.
"""

from __future__ import annotations

import json
from pathlib import Path

import medspacy
from medspacy.target_matcher import TargetRule

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "research"


def plural(word: str) -> str:
    if word.endswith(("s", "x", "z", "ch", "sh")):
        return word + "es"
    if word.endswith("y") and word[-2:-1] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


def pipeline():
    nlp = medspacy.load()
    rules = []
    for row in json.loads((CORPUS / "thesaurus.json").read_text()):
        words = row["english"].split()
        for term in {row["english"], " ".join([*words[:-1], plural(words[-1])])}:
            rules.append(TargetRule(term, row["code"]))
    nlp.get_pipe("medspacy_target_matcher").add(rules)
    return nlp


def labels(texts: list[str]) -> list[set]:
    nlp = pipeline()
    found = []
    for doc in nlp.pipe(texts):
        found.append(
            {(e.label_, e._.is_negated, e._.is_uncertain, e._.is_family) for e in doc.ents}
        )
    return found


def f1(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    precision, recall = tp / max(1, tp + fp), tp / max(1, tp + fn)
    total = precision + recall
    return precision, recall, (2 * precision * recall / total if total else 0.0)


def main() -> None:
    for name in ("corpus_en.jsonl", "corpus_en_heldout.jsonl"):
        notes = [json.loads(line) for line in (CORPUS / name).read_text().splitlines()]
        expected = []
        for note in notes:
            labelled = set()
            for label in note["expected"]:
                code, _, flags = label.partition(":")
                parts = set(flags.split("+")) if flags else set()
                labelled.add((code, "neg" in parts, "hyp" in parts, "fam" in parts))
            expected.append(labelled)
        found = labels([note["text"] for note in notes])
        concept = [0, 0, 0]
        full = [0, 0, 0]
        for got, want in zip(found, expected, strict=True):
            for score, a, b in ((concept, {x[0] for x in got}, {x[0] for x in want}),
                                (full, got, want)):  # fmt: skip
                score[0] += len(a & b)
                score[1] += len(a - b)
                score[2] += len(b - a)
        concept_figures = " ".join(f"{x:.3f}" for x in f1(*concept))
        full_figures = " ".join(f"{x:.3f}" for x in f1(*full))
        print(name, f"concept P/R/F1 {concept_figures} | full P/R/F1 {full_figures}")


if __name__ == "__main__":
    main()
