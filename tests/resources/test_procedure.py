"""Procedure: the seed page (docs/resources/procedure.md) end to end."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from codoc_fhir.warehouse.schema import dwh_data, dwh_thesaurus, dwh_thesaurus_data
from tests.factories import count_rows, make_patient, make_stay, seed_procedure_context

SEED_PROCEDURE = {
    "resourceType": "Procedure",
    "status": "completed",
    "code": {"coding": [{"code": "COLO001", "display": "Colonoscopy"}]},
    "subject": {"reference": "Patient/1"},
    "encounter": {"reference": "Encounter/1"},
    "performedDateTime": "2024-01-15T14:00:00Z",
    "performer": [{"actor": {"reference": "Organization/department-1"}}],
}


@pytest.fixture
def context(engine):
    return seed_procedure_context(engine)


def test_seed_page_create_answers_the_documented_procedure(client, context):
    response = client.post("/v4.3.0/procedure/", json=SEED_PROCEDURE)
    assert response.status_code == 201
    created = response.json()
    assert created["id"] == "1"
    assert created["status"] == "unknown"
    assert created["identifier"][0] == {"use": "official", "value": "1"}
    assert created["code"]["coding"][0] == {
        "system": "urn:codoc:fhir:codesystem:Acte",
        "code": "COLO001",
        "display": "Colonoscopy",
    }
    assert created["subject"] == {"reference": "Patient/1"}
    assert created["encounter"] == {"reference": "Encounter/1"}
    assert created["performedDateTime"] == "2024-01-15T14:00:00Z"
    performer = created["performer"][0]
    assert performer["actor"] == {
        "reference": "Organization/department-1",
        "display": "Cardiology Department",
    }
    assert performer["function"]["coding"][0]["code"] == "department"
    assert created["meta"]["versionId"] == "1"
    assert response.headers["location"].endswith("/v4.3.0/Procedure/1")
    assert response.headers["etag"] == 'W/"1"'
    assert response.headers["content-type"].startswith("application/fhir+json")


def test_read_on_codoc_and_standard_paths(client, context):
    client.post("/v4.3.0/procedure/", json=SEED_PROCEDURE)
    for path in ("/v4.3.0/procedure/1/", "/v4.3.0/procedure/1", "/v4.3.0/Procedure/1"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.json()["code"]["coding"][0]["code"] == "COLO001"


def test_first_use_creates_thesaurus_and_concept_once(client, context, engine):
    client.post("/v4.3.0/procedure/", json=SEED_PROCEDURE)
    client.post("/v4.3.0/procedure/", json=SEED_PROCEDURE)
    with engine.connect() as conn:
        thesauri = conn.execute(select(dwh_thesaurus.c.thesaurus_code)).scalars().all()
        concepts = conn.execute(select(dwh_thesaurus_data.c.concept_str)).scalars().all()
    assert thesauri == ["Acte"]
    assert concepts == ["Colonoscopy"]
    assert count_rows(engine, dwh_data) == 2


def test_put_replaces_and_bumps_version(client, context):
    client.post("/v4.3.0/procedure/", json=SEED_PROCEDURE)
    replacement = dict(SEED_PROCEDURE, performedDateTime="2024-02-01T10:30:00+02:00")
    replacement["performer"] = [{"actor": {"reference": "Organization/unit-1"}}]
    response = client.put("/v4.3.0/procedure/1/", json=replacement)
    assert response.status_code == 200
    body = response.json()
    assert body["performedDateTime"] == "2024-02-01T08:30:00Z"
    assert body["performer"][0]["function"]["coding"][0]["code"] == "unit"
    assert body["meta"]["versionId"] == "2"


def test_get_then_put_round_trips(client, context):
    created = client.post("/v4.3.0/procedure/", json=SEED_PROCEDURE).json()
    again = client.put("/v4.3.0/Procedure/1", json=created).json()
    created.pop("meta")
    again.pop("meta")
    assert again == created


def test_patch_changes_only_given_fields(client, context):
    client.post("/v4.3.0/procedure/", json=SEED_PROCEDURE)
    response = client.patch(
        "/v4.3.0/procedure/1/", json={"performedDateTime": "2024-03-01T00:00:00Z"}
    )
    assert response.status_code == 200
    assert response.json()["performedDateTime"] == "2024-03-01T00:00:00Z"
    assert response.json()["code"]["coding"][0]["code"] == "COLO001"


def test_json_patch(client, context):
    client.post("/v4.3.0/procedure/", json=SEED_PROCEDURE)
    response = client.patch(
        "/v4.3.0/Procedure/1",
        content=b'[{"op":"remove","path":"/encounter"}]',
        headers={"content-type": "application/json-patch+json"},
    )
    assert response.status_code == 200
    assert "encounter" not in response.json()


def test_delete_then_read_is_410_gone(client, context, engine):
    client.post("/v4.3.0/procedure/", json=SEED_PROCEDURE)
    assert client.delete("/v4.3.0/procedure/1/").status_code == 204
    gone = client.get("/v4.3.0/procedure/1/")
    assert gone.status_code == 410
    assert gone.json()["issue"][0]["code"] == "deleted"
    assert count_rows(engine, dwh_data) == 0


def test_if_match_mismatch_is_412(client, context):
    client.post("/v4.3.0/procedure/", json=SEED_PROCEDURE)
    response = client.put(
        "/v4.3.0/procedure/1/", json=SEED_PROCEDURE, headers={"If-Match": 'W/"7"'}
    )
    assert response.status_code == 412
    assert (
        client.put(
            "/v4.3.0/procedure/1/", json=SEED_PROCEDURE, headers={"If-Match": 'W/"1"'}
        ).status_code
        == 200
    )


def test_row_of_another_thesaurus_is_404_here(make_client, engine):
    seed_procedure_context(engine)
    prescriptions = make_client(THESAURUS_CODE_PROCEDURE="Prescription")
    assert prescriptions.post("/v4.3.0/procedure/", json=SEED_PROCEDURE).status_code == 201
    acts = make_client()
    assert acts.get("/v4.3.0/procedure/1/").status_code == 404


def test_strict_codes_refuse_unknown_code(make_client, engine):
    seed_procedure_context(engine)
    strict = make_client(CODOC_STRICT_CODES="true")
    response = strict.post("/v4.3.0/procedure/", json=SEED_PROCEDURE)
    assert response.status_code == 400
    assert count_rows(engine, dwh_data) == 0


def _without(field: str) -> dict:
    body = dict(SEED_PROCEDURE)
    body.pop(field)
    return body


@pytest.mark.parametrize(
    ("body", "status", "code", "needle"),
    [
        (_without("status"), 400, "required", "status"),
        (_without("code"), 400, "required", "code"),
        (_without("subject"), 400, "required", "subject"),
        (_without("performedDateTime"), 400, "required", "performedDateTime"),
        (dict(SEED_PROCEDURE, status="bogus"), 400, "invalid", "status"),
        (dict(SEED_PROCEDURE, performedDateTime="15/01/2024"), 400, "invalid", "date"),
        (
            dict(SEED_PROCEDURE, subject={"reference": "Patient/999"}),
            400,
            "not-found",
            "Patient with ID 999 does not exist",
        ),
        (
            dict(SEED_PROCEDURE, encounter={"reference": "Encounter/999"}),
            400,
            "not-found",
            "Stay with ID 999 does not exist",
        ),
        (
            dict(SEED_PROCEDURE, performer=[{"actor": {"reference": "Organization/unit-9"}}]),
            400,
            "not-found",
            "Unit with ID 9 does not exist",
        ),
        (dict(SEED_PROCEDURE, resourceType="Patient"), 400, "invalid", "resourceType"),
        (dict(SEED_PROCEDURE, code={"coding": [{"display": "no code"}]}), 400, "required", "code"),
    ],
)
def test_bad_input_is_a_4xx_outcome_and_stores_nothing(
    client, context, engine, body, status, code, needle
):
    response = client.post("/v4.3.0/procedure/", json=body)
    assert response.status_code == status, response.text
    issue = response.json()["issue"][0]
    assert issue["code"] == code
    assert needle in issue["diagnostics"]
    assert count_rows(engine, dwh_data) == 0
    assert count_rows(engine, dwh_thesaurus_data) == 0


def test_encounter_of_another_patient_is_refused(client, context, engine):
    other = make_patient(engine, lastname="Other", ipp="IPP-OTHER")
    make_stay(engine, patient_num=other)
    body = dict(SEED_PROCEDURE, encounter={"reference": "Encounter/2"})
    response = client.post("/v4.3.0/procedure/", json=body)
    assert response.status_code == 400
    assert count_rows(engine, dwh_data) == 0


def test_put_with_other_id_is_400(client, context):
    client.post("/v4.3.0/procedure/", json=SEED_PROCEDURE)
    response = client.put("/v4.3.0/procedure/1/", json=dict(SEED_PROCEDURE, id="2"))
    assert response.status_code == 400
