"""A patient-scoped token sees and writes only its own patient's rows."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from codoc_fhir.warehouse.schema import dwh_data, dwh_thesaurus_department
from tests.factories import count_rows, make_patient, seed_procedure_context
from tests.security.tokens import AUTH_ENV, bearer, hs256

ADMIN = bearer(hs256("system/*.*", sub="loader"))


def procedure_for(patient: int) -> dict:
    return {
        "resourceType": "Procedure",
        "status": "completed",
        "code": {"coding": [{"code": "COLO001", "display": "Colonoscopy"}]},
        "subject": {"reference": f"Patient/{patient}"},
        "performedDateTime": "2024-01-15T14:00:00Z",
    }


@pytest.fixture
def secured(make_client, engine):
    """Patients 1 and 2 with one Procedure each (Procedure/1 is patient 1's)."""
    seed_procedure_context(engine)
    make_patient(engine, lastname="Other", firstname="Bob")
    client = make_client(**AUTH_ENV)
    for patient in (1, 2):
        response = client.post("/v4.3.0/procedure/", json=procedure_for(patient), headers=ADMIN)
        assert response.status_code == 201
    return client


@pytest.mark.parametrize(
    "claims",
    [{"patient": "1"}, {"fhirUser": "https://idp.example.org/fhir/Patient/1"}],
    ids=["patient-claim", "fhirUser"],
)
def test_reads_only_its_own_patient(secured, claims):
    token = bearer(hs256("patient/*.read", **claims))
    assert secured.get("/v4.3.0/Patient/1", headers=token).status_code == 200
    assert secured.get("/v4.3.0/procedure/1/", headers=token).status_code == 200
    other = secured.get("/v4.3.0/Patient/2", headers=token)
    assert other.status_code == 404
    assert other.json()["issue"][0]["code"] == "not-found"
    assert secured.get("/v4.3.0/Procedure/2", headers=token).status_code == 404


def test_patient_token_without_patient_claim_is_forbidden(secured):
    token = bearer(hs256("patient/*.read"))
    assert secured.get("/v4.3.0/Patient/1", headers=token).status_code == 403


def test_user_scope_beside_patient_scope_is_not_restricted(secured):
    token = bearer(hs256("patient/*.read user/Procedure.read", patient="1"))
    assert secured.get("/v4.3.0/Procedure/2", headers=token).status_code == 200
    assert secured.get("/v4.3.0/Patient/2", headers=token).status_code == 404


def test_writes_stay_within_the_patient(secured, engine):
    token = bearer(hs256("patient/*.*", patient="1"))
    created = secured.post("/v4.3.0/procedure/", json=procedure_for(1), headers=token)
    assert created.status_code == 201
    before = count_rows(engine, dwh_data)
    for_other = secured.post("/v4.3.0/procedure/", json=procedure_for(2), headers=token)
    assert for_other.status_code == 403
    assert for_other.json()["issue"][0]["code"] == "forbidden"
    assert secured.delete("/v4.3.0/Procedure/2", headers=token).status_code == 404
    moved = secured.put("/v4.3.0/Procedure/1", json=procedure_for(2) | {"id": "1"}, headers=token)
    assert moved.status_code == 403
    assert count_rows(engine, dwh_data) == before
    assert secured.get("/v4.3.0/Procedure/1", headers=ADMIN).json()["subject"] == {
        "reference": "Patient/1"
    }
    assert secured.delete("/v4.3.0/Procedure/1", headers=token).status_code == 204


def test_patientless_resources_readable_not_writable(secured, engine):
    token = bearer(hs256("patient/*.*", patient="1"))
    assert secured.get("/v4.3.0/Organization/department-1", headers=token).status_code == 200
    body = secured.get("/v4.3.0/Organization/department-1", headers=token).json()
    body["name"] = "Renamed"
    assert (
        secured.put("/v4.3.0/Organization/department-1", json=body, headers=token).status_code
        == 403
    )
    with engine.connect() as conn:
        name = conn.execute(select(dwh_thesaurus_department.c.department_str)).scalar_one()
    assert name == "Cardiology Department"


def test_search_is_restricted_to_the_patient(secured):
    token = bearer(hs256("patient/*.read", patient="1"))
    response = secured.get("/v4.3.0/Procedure", headers=token)
    if response.status_code in (404, 405, 501):
        pytest.skip("type-level search is not served yet")
    assert response.status_code == 200
    subjects = {entry["resource"]["subject"]["reference"] for entry in response.json()["entry"]}
    assert subjects == {"Patient/1"}
    wide = secured.get("/v4.3.0/Procedure?subject=Patient/2", headers=token)
    assert wide.status_code in (200, 403)
    if wide.status_code == 200:
        assert not wide.json().get("entry")
