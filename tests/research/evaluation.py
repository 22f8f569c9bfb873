"""Precision, recall and F1 of the extraction on the annotated corpora of this folder.

Each corpus line is `{"text": ..., "expected": ["FIEVRE:neg", "TOUX", ...]}`: per note,
the set of (concept, negation, hypothesis, family) it mentions, qualifiers written after a
colon and joined with `+` (`CANCER_SEIN:neg+fam`). This is what extraction stores: one
phenotype Observation per concept and qualifier set found in a document.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from codoc_fhir.research.nlp import Concept, Extractor

HERE = Path(__file__).parent
Label = tuple[str, bool, bool, bool]


def thesaurus(language: str) -> list[Concept]:
    rows = json.loads((HERE / "thesaurus.json").read_text())
    return [Concept(num, row["code"], (row[language],)) for num, row in enumerate(rows, 1)]


def parse_label(text: str) -> Label:
    code, _, flags = text.partition(":")
    found = set(flags.split("+")) if flags else set()
    return code, "neg" in found, "hyp" in found, "fam" in found


def corpus(name: str) -> list[tuple[str, set[Label]]]:
    lines = (HERE / name).read_text(encoding="utf-8").splitlines()
    notes = [json.loads(line) for line in lines if line.strip()]
    return [(note["text"], {parse_label(label) for label in note["expected"]}) for note in notes]


@dataclass
class Score:
    true_positives: int = 0
    false_positives: int = 0
    false_negatives: int = 0

    def add(self, found: set, expected: set) -> None:
        self.true_positives += len(found & expected)
        self.false_positives += len(found - expected)
        self.false_negatives += len(expected - found)

    @property
    def precision(self) -> float:
        return self.true_positives / max(1, self.true_positives + self.false_positives)

    @property
    def recall(self) -> float:
        return self.true_positives / max(1, self.true_positives + self.false_negatives)

    @property
    def f1(self) -> float:
        total = self.precision + self.recall
        return 2 * self.precision * self.recall / total if total else 0.0


def evaluate(language: str, name: str) -> tuple[Score, Score, list[str]]:
    """(concept score, full score, the notes that missed) of `language` on corpus `name`."""
    concepts = thesaurus(language)
    codes = {concept.num: concept.code for concept in concepts}
    extractor = Extractor(concepts, language)
    concept_score, full_score, misses = Score(), Score(), []
    for text, expected in corpus(name):
        found = {
            (codes[f.concept_num], f.negation, f.hypothesis, f.family) for f in extractor.find(text)
        }
        concept_score.add({label[0] for label in found}, {label[0] for label in expected})
        full_score.add(found, expected)
        if found != expected:
            misses.append(f"{text!r}: found {sorted(found)}, expected {sorted(expected)}")
    return concept_score, full_score, misses


if __name__ == "__main__":
    for language, short in (("french", "fr"), ("english", "en")):
        for name in (f"corpus_{short}.jsonl", f"corpus_{short}_heldout.jsonl"):
            if not (HERE / name).exists():
                continue
            concept, full, misses = evaluate(language, name)
            print(
                f"{name}: concept P {concept.precision:.3f} R {concept.recall:.3f} "
                f"F1 {concept.f1:.3f} | full P {full.precision:.3f} R {full.recall:.3f} "
                f"F1 {full.f1:.3f}"
            )
            for miss in misses:
                print("   ", miss)
