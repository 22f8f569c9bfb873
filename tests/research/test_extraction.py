"""Built-in phenotype extraction through the API and the command line (both backends)."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from codoc_fhir import cli
from codoc_fhir.config import get_settings
from codoc_fhir.warehouse.schema import dwh_enrsem, dwh_enrsem_extraction
from tests.factories import count_rows
from tests.research.helpers import (
    BASE,
    create_document,
    create_patient,
    create_thesaurus,
    document_body,
    qualified,
)

NOTE = (
    "Patiente de 60 ans. Pas de fièvre mais une toux sèche depuis 3 jours. Toux nocturne. "
    "Suspicion d'embolie pulmonaire. Sa mère a eu un cancer du sein. Diabète connu."
)
EXTRACT = "$extract-phenotypes"


@pytest.fixture
def research(make_client, tmp_path):
    client = make_client(CODOC_EXPORT_DIR=str(tmp_path))
    create_thesaurus(client)
    return client


def extract(client, document: str, **kwargs) -> dict:
    answer = client.post(f"{BASE}/DocumentReference/{document}/{EXTRACT}", **kwargs)
    assert answer.status_code == 200, answer.text
    bundle = answer.json()
    assert bundle["resourceType"] == "Bundle"
    assert bundle["type"] == "collection"
    return bundle


def test_one_document_stores_one_phenotype_per_concept_and_qualifiers(research, engine):
    patient = create_patient(research)
    document = create_document(research, patient, NOTE)
    bundle = extract(research, document)
    found = {qualified(entry["resource"]): entry["resource"] for entry in bundle["entry"]}
    assert set(found) == {
        ("FIEVRE", True, False, False),
        ("TOUX", False, False, False),
        ("EMBOLIE", False, True, False),
        ("CANCER_SEIN", False, False, True),
        ("DIABETE", False, False, False),
    }
    cough = found[("TOUX", False, False, False)]
    assert cough["valueString"] == "toux"
    parts = {c["code"]["coding"][0]["code"]: c for c in cough["component"]}
    assert parts["count_concept_str_found"]["valueInteger"] == 2
    assert parts["tfidf_code_document"]["valueQuantity"]["value"] > 0
    assert cough["subject"] == {"reference": f"Patient/{patient}"}
    assert cough["derivedFrom"] == [{"reference": f"DocumentReference/{document}"}]
    for entry in bundle["entry"]:  # every stored phenotype reads back the same
        assert entry["fullUrl"].endswith(f"/Observation/{entry['resource']['id']}")
        read = research.get(f"{BASE}/Observation/{entry['resource']['id']}")
        assert read.json() == entry["resource"]


def test_rerun_replaces_extraction_rows_only(research, engine):
    patient = create_patient(research)
    document = create_document(research, patient, NOTE)
    posted = research.post(
        f"{BASE}/Observation",
        json={"resourceType": "Observation", "status": "final",
              "code": {"coding": [{"code": "DIABETE"}]},
              "subject": {"reference": f"Patient/{patient}"},
              "derivedFrom": [{"reference": f"DocumentReference/{document}"}],
              "valueString": "diabete (external NLP)"},
    )  # fmt: skip
    assert posted.status_code == 201, posted.text
    first = [qualified(entry["resource"]) for entry in extract(research, document)["entry"]]
    second = [qualified(entry["resource"]) for entry in extract(research, document)["entry"]]
    assert len(first) == 5
    assert second == first
    assert count_rows(engine, dwh_enrsem) == 6  # replaced, not added
    assert research.get(f"{BASE}/Observation/{posted.json()['id']}").status_code == 200
    # the text changes: the next extraction follows it
    body = document_body(patient, "Absence de diabète.")
    assert research.put(f"{BASE}/DocumentReference/{document}", json={**body, "id": document})
    bundle = extract(research, document)
    assert [qualified(entry["resource"]) for entry in bundle["entry"]] == [
        ("DIABETE", True, False, False)
    ]
    assert count_rows(engine, dwh_enrsem) == 2


def test_english_text_with_another_thesaurus(make_client, tmp_path):
    client = make_client(CODOC_TEXT_LANGUAGE="english")
    create_thesaurus(client, "Research", "english")
    patient = create_patient(client)
    text = "Denies chest pain. Possible pneumonia. Family history of strokes. Fever."
    document = create_document(client, patient, text)
    params = {"resourceType": "Parameters",
              "parameter": [{"name": "thesaurus", "valueString": "Research"}]}  # fmt: skip
    bundle = extract(client, document, json=params)
    assert {qualified(entry["resource"]) for entry in bundle["entry"]} == {
        ("DOULEUR_THOR", True, False, False),
        ("PNEUMOPATHIE", False, True, False),
        ("AVC", False, False, True),
        ("FIEVRE", False, False, False),
    }
    # the default thesaurus (Phenotypes) does not exist in this database
    answer = client.post(f"{BASE}/DocumentReference/{document}/{EXTRACT}")
    assert answer.status_code == 400
    assert "Thesaurus 'Phenotypes' does not exist" in answer.text


def test_bad_requests_write_nothing(research, engine):
    patient = create_patient(research)
    document = create_document(research, patient, NOTE)
    cases = [
        (f"DocumentReference/999/{EXTRACT}", {}, 404),
        (f"DocumentReference/{document}/{EXTRACT}", {"json": {"resourceType": "Patient"}}, 400),
        (f"DocumentReference/{document}/{EXTRACT}?colour=red", {}, 400),
        (f"DocumentReference/{document}/{EXTRACT}?thesaurus=Nope", {}, 400),
        (f"DocumentReference/{EXTRACT}?thesaurus=Nope", {}, 400),
        (f"DocumentReference/{EXTRACT}?_since=yesterday", {}, 400),
        (f"DocumentReference/{EXTRACT}?patient=Encounter/1", {}, 400),
    ]
    for path, kwargs, status in cases:
        answer = research.post(f"{BASE}/{path}", **kwargs)
        assert answer.status_code == status, (path, answer.text)
        assert answer.json()["resourceType"] == "OperationOutcome"
    assert count_rows(engine, dwh_enrsem, dwh_enrsem_extraction) == 0


def wait_for_manifest(client, url: str) -> dict:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        answer = client.get(url)
        if answer.status_code == 200:
            return answer.json()
        assert answer.status_code == 202, answer.text
        time.sleep(0.1)
    raise AssertionError("the extraction job did not complete")


def test_many_documents_as_a_job(research, engine):
    first, second = create_patient(research), create_patient(research, "Durand")
    create_document(research, first, "Pas de fièvre.")
    create_document(research, first, "Toux et fièvre.")
    create_document(research, second, "Asthme connu.")
    answer = research.post(f"{BASE}/DocumentReference/{EXTRACT}?patient=Patient/{first}")
    assert answer.status_code == 202, answer.text
    manifest = wait_for_manifest(research, answer.headers["content-location"])
    [output] = manifest["output"]
    assert output["type"] == "Observation"
    assert output["count"] == 3
    lines = research.get(output["url"]).content.splitlines()
    assert len(lines) == 3
    assert research.get(f"{BASE}/Observation?subject=Patient/{second}").json()["total"] == 0
    # all documents: only the one not yet extracted is read
    parameter = {"name": "thesaurus", "valueCode": "Phenotypes"}
    body = {"resourceType": "Parameters", "parameter": [parameter]}
    answer = research.post(f"{BASE}/documentreference/{EXTRACT}", json=body)
    assert answer.status_code == 202
    manifest = wait_for_manifest(research, answer.headers["content-location"])
    assert [item["count"] for item in manifest["output"]] == [1]
    assert count_rows(engine, dwh_enrsem_extraction) == 3


def test_command_line_extract_is_resumable(research, engine, database_url, monkeypatch, capsys):
    patient = create_patient(research)
    for text in ("Diabète.", "Pas de diabète.", "Rien à signaler."):
        create_document(research, patient, text)
    monkeypatch.setenv("CODOC_DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        cli.main(["extract", "--patient", patient])
        assert "3 documents read, 2 phenotypes stored" in capsys.readouterr().out
        cli.main(["extract"])
        assert "0 documents read" in capsys.readouterr().out
        cli.main(["extract", "--since", "2000-01-01"])
        assert "0 documents read" in capsys.readouterr().out
    finally:
        get_settings.cache_clear()
    with engine.connect() as conn:
        flags = conn.execute(select(dwh_enrsem.c.certainty).order_by("certainty")).scalars()
        assert list(flags) == [-1, 1]


def test_a_concept_is_found_by_its_designations_too(research):
    """CONTRACT 11: display and designations (synonyms) both name a concept."""
    concept = {
        "code": "IRC",
        "display": "Insuffisance rénale chronique",
        "designation": [{"value": "IRC"}, {"value": "maladie rénale chronique"}],
    }
    added = research.post(f"{BASE}/codesystem/Phenotypes/concept/", json=concept)
    assert added.status_code == 201, added.text
    patient = create_patient(research)
    text = "Antécédents : IRC stade 3. Pas de maladie rénale chronique chez le père."
    document = create_document(research, patient, text)
    found = {qualified(entry["resource"]) for entry in extract(research, document)["entry"]}
    assert ("IRC", False, False, False) in found  # the patient's own, by its short name
    assert ("IRC", True, False, True) in found  # the father's, negated, by its other name
