"""Token search on the codes kept elements carry (CONTRACT section 9): a resource is found by
any coding or identifier it was sent with, not only by the thesaurus code of its column."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from codoc_fhir.warehouse.schema import dwh_patient
from tests.factories import seed_procedure_context

SNOMED = "http://snomed.info/sct"
PROCEDURE = {
    "resourceType": "Procedure",
    "status": "completed",
    "code": {
        "coding": [
            {"system": SNOMED, "code": "73761001", "display": "Colonoscopy"},
            {"system": "http://www.ama-assn.org/go/cpt", "code": "45378"},
        ],
        "text": "Colonoscopy",
    },
    "identifier": [
        {"use": "usual", "system": "urn:his:act", "value": "ACT-1"},
        {"system": "urn:billing", "value": "B-77"},
    ],
    "subject": {"reference": "Patient/1"},
    "performedDateTime": "2024-01-15T14:00:00Z",
}


@pytest.fixture
def procedure(client, engine):
    seed_procedure_context(engine)
    response = client.post("/v4.3.0/Procedure", json=PROCEDURE)
    assert response.status_code == 201, response.text
    return response.json()


def _ids(client, query: str) -> list[str]:
    answer = client.get(f"/v4.3.0/Procedure?{query}")
    assert answer.status_code == 200, answer.text
    return [entry["resource"]["id"] for entry in answer.json().get("entry", [])]


def test_read_answers_every_sent_coding_and_identifier(procedure):
    codings = procedure["code"]["coding"]
    assert codings[1:] == PROCEDURE["code"]["coding"]  # after the thesaurus coding
    assert procedure["code"]["text"] == "Colonoscopy"
    assert procedure["identifier"][1:] == PROCEDURE["identifier"]


@pytest.mark.parametrize(
    "query",
    [
        f"code={SNOMED}|73761001",
        "code=http://www.ama-assn.org/go/cpt|45378",
        "code=45378",
        "identifier=urn:billing|B-77",
        "identifier=B-77",
    ],
)
def test_kept_codes_find_the_resource(client, procedure, query):
    assert _ids(client, query) == [procedure["id"]]


@pytest.mark.parametrize(
    "query",
    [
        "code=http://loinc.org|73761001",  # the right code in another system
        f"code={SNOMED}|99999",
        "identifier=urn:other|B-77",
    ],
)
def test_kept_codes_respect_the_system(client, procedure, query):
    assert _ids(client, query) == []


def test_not_modifier_excludes_kept_codes(client, procedure):
    assert _ids(client, f"code:not={SNOMED}|73761001") == []
    assert _ids(client, f"code:not={SNOMED}|99999") == [procedure["id"]]


def test_an_update_replaces_the_kept_codes(client, procedure):
    body = dict(PROCEDURE, code={"coding": [{"system": SNOMED, "code": "44441009"}]})
    assert client.put(f"/v4.3.0/Procedure/{procedure['id']}", json=body).status_code == 200
    assert _ids(client, f"code={SNOMED}|73761001") == []
    assert _ids(client, f"code={SNOMED}|44441009") == [procedure["id"]]


def test_a_deleted_resource_leaves_no_kept_code(client, procedure):
    assert client.delete(f"/v4.3.0/Procedure/{procedure['id']}").status_code in (200, 204)
    assert _ids(client, f"code={SNOMED}|73761001") == []


def test_kept_patient_elements_follow_sql_updates_of_columns(client, engine):
    """The tables stay the truth: a column changed by SQL shows in the next read, with the
    kept parts of the same element still around it."""
    patient = {
        "resourceType": "Patient",
        "identifier": [{"use": "usual", "system": "urn:ipp", "value": "IPP-1"}],
        "name": [{"use": "official", "family": "Martin", "given": ["Anne"], "prefix": ["Mrs."]}],
        "gender": "female",
        "birthDate": "1970-01-01",
    }
    created = client.post("/v4.3.0/Patient", json=patient).json()
    with engine.begin() as conn:
        conn.execute(update(dwh_patient).values(lastname="Durand"))
    name = client.get(f"/v4.3.0/Patient/{created['id']}").json()["name"][0]
    assert name == {"use": "official", "family": "Durand", "given": ["Anne"], "prefix": ["Mrs."]}
