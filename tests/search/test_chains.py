"""Chained and reverse-chained search, one level (CONTRACT section 10), raw HTTP."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from codoc_fhir.warehouse.schema import dwh_patient_stay
from tests.factories import make_department, make_patient, make_site, make_stay
from tests.security.tokens import SECRET, bearer, hs256

BASE = "/v4.3.0"


def procedure(patient: int, code: str) -> dict:
    return {
        "resourceType": "Procedure",
        "status": "completed",
        "code": {"coding": [{"code": code}]},
        "subject": {"reference": f"Patient/{patient}"},
        "performedDateTime": "2024-01-15T14:00:00Z",
    }


@pytest.fixture
def facts(client, engine):
    """Martin (IPP1) had COLO001 twice, Durand (IPP2) ECHO002; Martin's stay is in Cardio."""
    martin = make_patient(engine, lastname="Martin", ipp="IPP1")
    durand = make_patient(engine, lastname="Durand", ipp="IPP2")
    site = make_site(engine)
    cardio = make_department(engine, code="CARD", name="Cardio", site_num=site)
    neuro = make_department(engine, code="NEUR", name="Neurology", site_num=site)
    for patient, department in ((martin, cardio), (durand, neuro)):
        stay = make_stay(engine, patient_num=patient)
        with engine.begin() as conn:
            conn.execute(
                update(dwh_patient_stay)
                .where(dwh_patient_stay.c.stay_num == stay)
                .values(service_org_level="department", service_org_num=department)
            )
    for patient, code in ((martin, "COLO001"), (durand, "ECHO002"), (martin, "COLO001")):
        assert client.post(f"{BASE}/Procedure", json=procedure(patient, code)).status_code == 201
    return {"martin": martin, "durand": durand}


def ids(response) -> list[str]:
    assert response.status_code == 200, response.text
    return sorted(entry["resource"]["id"] for entry in response.json().get("entry", []))


def test_chained_on_the_patient_identifier_and_family(client, facts):
    assert ids(client.get(f"{BASE}/Procedure?subject:Patient.identifier=HIS|IPP1")) == ["1", "3"]
    assert ids(client.get(f"{BASE}/Procedure?subject.identifier=IPP2")) == ["2"]
    assert ids(client.get(f"{BASE}/Procedure?subject.family=Martin")) == ["1", "3"]
    assert ids(client.get(f"{BASE}/Procedure?patient.family=Nobody")) == []
    combined = client.get(f"{BASE}/Procedure?subject.family=Martin&code=ECHO002")
    assert ids(combined) == []


def test_chained_through_an_organization_pair(client, facts):
    cardio = client.get(f"{BASE}/Encounter?service-provider.name=Cardio")
    assert ids(cardio) == ["1"]
    typed = client.get(f"{BASE}/Encounter?service-provider:Organization.name=Neuro")
    assert ids(typed) == ["2"]


def test_reverse_chained_has(client, facts):
    colo = client.get(f"{BASE}/Patient?_has:Procedure:subject:code=COLO001")
    assert ids(colo) == [str(facts["martin"])]
    echo = client.get(f"{BASE}/Patient?_has:Procedure:patient:code=ECHO002&family=Durand")
    assert ids(echo) == [str(facts["durand"])]
    departments = client.get(
        f"{BASE}/Organization?_has:Encounter:service-provider:subject=Patient/1"
    )
    assert [entry["resource"]["name"] for entry in departments.json()["entry"]] == ["Cardio"]


@pytest.mark.parametrize(
    "query",
    [
        "subject.nothing=1",  # the target has no such parameter
        "code.family=Martin",  # not a reference
        "subject.organization.name=Cardio",  # two levels
        "subject:Patient.subject.family=X",
        "_has:Procedure:subject",  # incomplete
        "_has:Nothing:subject:code=X",
        "_has:Procedure:encounter:code=X",  # Procedure.encounter does not point at Patient
    ],
)
def test_unsupported_chains_are_400(client, facts, query):
    type_name = "Patient" if query.startswith("_has") else "Procedure"
    response = client.get(f"{BASE}/{type_name}?{query}")
    assert response.status_code == 400
    assert response.json()["issue"][0]["code"] == "not-supported"


def test_patient_restriction_applies_inside_the_chain(make_client, engine):
    secured = make_client(CODOC_JWT_SECRET=SECRET)
    martin = make_patient(engine, lastname="Martin", ipp="IPP1")
    durand = make_patient(engine, lastname="Durand", ipp="IPP2")
    admin = bearer(hs256("system/*.*"))
    for patient, code in ((martin, "COLO001"), (durand, "COLO001")):
        body = procedure(patient, code)
        assert secured.post(f"{BASE}/Procedure", json=body, headers=admin).status_code == 201
    own = bearer(hs256("patient/*.read", patient=str(martin)))
    found = secured.get(f"{BASE}/Procedure?subject.family=Durand", headers=own)
    assert ids(found) == []
    mine = secured.get(f"{BASE}/Procedure?subject.family=Martin", headers=own)
    assert ids(mine) == ["1"]
    has = secured.get(f"{BASE}/Patient?_has:Procedure:subject:code=COLO001", headers=own)
    assert ids(has) == [str(martin)]
