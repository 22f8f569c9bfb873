"""Phenotype search by qualifiers (negation, hypothesis, family) and value-string."""

from __future__ import annotations

import pytest

from tests.research.helpers import BASE, create_document, create_patient, create_thesaurus

NOTES = {
    "own": "Diabète de type 2. Pas de fièvre.",
    "family": "Son père a un diabète.",
    "denied": "Pas de diabète. Suspicion de pneumopathie.",
}


@pytest.fixture
def phenotypes(client):
    create_thesaurus(client)
    patients = {}
    for name, text in NOTES.items():
        patients[name] = create_patient(client, name)
        document = create_document(client, patients[name], text)
        answer = client.post(f"{BASE}/DocumentReference/{document}/$extract-phenotypes")
        assert answer.status_code == 200, answer.text
    return client, patients


def subjects(client, query: str) -> list[str]:
    answer = client.get(f"{BASE}/Observation?{query}")
    assert answer.status_code == 200, answer.text
    return sorted(e["resource"]["subject"]["reference"] for e in answer.json().get("entry", []))


def test_affirmed_own_mentions_of_a_concept(phenotypes):
    client, patients = phenotypes
    code = "code=urn:codoc:fhir:codesystem:Phenotypes|DIABETE"
    assert subjects(client, f"{code}&negation=false&family=false") == [f"Patient/{patients['own']}"]
    assert subjects(client, f"{code}&family=true") == [f"Patient/{patients['family']}"]
    assert subjects(client, f"{code}&negation=true") == [f"Patient/{patients['denied']}"]
    assert subjects(client, "hypothesis=true") == [f"Patient/{patients['denied']}"]
    assert len(subjects(client, "hypothesis=false")) == 4
    assert subjects(client, "negation=true&code=FIEVRE") == [f"Patient/{patients['own']}"]


def test_value_string_and_bad_values(phenotypes):
    client, patients = phenotypes
    assert subjects(client, "value-string=pneumo") == [f"Patient/{patients['denied']}"]
    assert len(subjects(client, "value-string=DIABETE")) == 3  # case and accent insensitive
    answer = client.get(f"{BASE}/Observation?negation=maybe")
    assert answer.status_code == 400
    assert "Expected true or false" in answer.text
