"""Extraction quality on the annotated corpora: concept F1 >= 0.95 and full (concept and
qualifiers) F1 >= 0.90 per language, on the tuning part and on the held-out part."""

from __future__ import annotations

import pytest

from codoc_fhir.research.nlp import term_variants
from tests.research.evaluation import corpus, evaluate

PARTS = [
    ("french", "corpus_fr.jsonl"),
    ("french", "corpus_fr_heldout.jsonl"),
    ("english", "corpus_en.jsonl"),
    ("english", "corpus_en_heldout.jsonl"),
]


@pytest.mark.parametrize(("language", "name"), PARTS)
def test_corpus_f1(language, name):
    concept, full, misses = evaluate(language, name)
    assert concept.f1 >= 0.95, misses
    assert full.f1 >= 0.90, misses


@pytest.mark.parametrize(("language", "name"), PARTS)
def test_corpus_covers_every_kind_of_mention(language, name):
    notes = corpus(name)
    labels = [label for _, expected in notes for label in expected]
    assert len(notes) >= (40 if "heldout" not in name else 20)
    assert any(label[1] for label in labels)  # negated
    assert any(label[2] for label in labels)  # hypothetical
    assert any(label[3] for label in labels)  # family
    assert any(not any(label[1:]) for label in labels)  # plain


def test_plural_forms_of_the_head_word():
    assert "insuffisances cardiaques" in term_variants("insuffisance cardiaque", "french")
    assert "cancers du sein" in term_variants("cancer du sein", "french")
    assert "accidents vasculaires cerebraux" in term_variants(
        "accidents vasculaires cerebral", "french"
    )
    assert "chest pains" in term_variants("chest pain", "english")
    assert "anemias" in term_variants("anemia", "english")
