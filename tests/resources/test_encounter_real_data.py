"""Encounter from real generated data (CONTRACT 9): a Synthea Encounter (class AMB of
v3-ActCode, period with offsets, type, participant, location, reasonCode, reasonReference,
diagnosis, hospitalization, a provider Organization as serviceProvider) loads whole; the
columns get what fits and a read answers what was sent except the differences
encounter.md lists (id and meta, the official identifier first, the class display,
references spelled `Type/id`, the serviceProvider's name, instants in UTC)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from sqlalchemy import select

from codoc_fhir.warehouse.schema import dwh_patient_mvt, dwh_patient_stay
from tests.factories import make_department, make_patient, make_site, make_unit

BASE = "/v4.3.0"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
SNOMED = "http://snomed.info/sct"

SYNTHEA_ENCOUNTER: dict[str, Any] = {
    "resourceType": "Encounter",
    "id": "b0e0f5a6-1c1b-4a57-9a2c-5a4f7c0e2d11",
    "meta": {"profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-encounter"]},
    "identifier": [
        {
            "use": "official",
            "system": "https://github.com/synthetichealth/synthea",
            "value": "b0e0f5a6-1c1b-4a57-9a2c-5a4f7c0e2d11",
        }
    ],
    "status": "finished",
    "class": {"system": ACT_CODE, "code": "AMB"},
    "type": [
        {
            "coding": [
                {"system": SNOMED, "code": "410620009", "display": "Well child visit (procedure)"}
            ],
            "text": "Well child visit (procedure)",
        }
    ],
    "subject": {"reference": "Patient/1", "display": "Mr. Jean Luc Hermiston"},
    "participant": [
        {
            "type": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                            "code": "PPRF",
                            "display": "primary performer",
                        }
                    ],
                    "text": "primary performer",
                }
            ],
            "period": {"start": "2012-03-09T04:25:24-05:00", "end": "2012-03-09T04:40:24-05:00"},
            "individual": {
                "reference": "Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|9999967592",
                "display": "Dr. Kris Bergstrom",
            },
        }
    ],
    "period": {"start": "2012-03-09T04:25:24-05:00", "end": "2012-03-09T04:40:24-05:00"},
    "reasonCode": [{"coding": [{"system": SNOMED, "code": "10509002", "display": "Bronchitis"}]}],
    "reasonReference": [{"reference": "Condition/not-loaded-yet"}],
    "diagnosis": [
        {
            "condition": {"reference": "Condition/42"},
            "use": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/diagnosis-role",
                        "code": "AD",
                    }
                ]
            },
            "rank": 1,
        }
    ],
    "hospitalization": {
        "admitSource": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/admit-source",
                    "code": "gp",
                    "display": "General Practitioner referral",
                }
            ]
        },
        "dischargeDisposition": {"text": "Home"},
        "destination": {"reference": "Location/home"},
    },
    "location": [
        {
            "location": {
                "reference": "Location?identifier=https://github.com/synthetichealth/synthea|l1",
                "display": "HALLMARK HEALTH SYSTEM",
            }
        }
    ],
    "serviceProvider": {"reference": "Organization/site-1", "display": "HALLMARK HEALTH"},
}


@pytest.fixture
def context(engine):
    site = make_site(engine, code="HALLMARK", name="Hallmark Health System")
    department = make_department(engine, site_num=site)
    unit = make_unit(engine, department_num=department)
    return {"site": site, "unit": unit, "patient": make_patient(engine)}


def expected_read(sent: dict[str, Any], ident: str, provider: dict[str, str]) -> dict[str, Any]:
    """What a read answers for `sent` (encounter.md's differences, nothing else)."""
    answer = copy.deepcopy(sent)
    answer.pop("meta")
    answer["id"] = ident
    answer["identifier"].insert(0, {"use": "official", "value": ident})
    answer["class"]["display"] = "ambulatory"
    answer["period"] = {"start": "2012-03-09T09:25:24Z", "end": "2012-03-09T09:40:24Z"}
    answer["serviceProvider"] = provider
    return answer


def without_meta(resource: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in resource.items() if key != "meta"}


def stay_row(engine: Any, table: Any = dwh_patient_stay) -> Any:
    with engine.connect() as conn:
        return conn.execute(select(table)).mappings().one()


def test_synthea_encounter_loads_and_reads_back_unchanged(client, context, engine):
    response = client.post(f"{BASE}/Encounter", json=SYNTHEA_ENCOUNTER)
    assert response.status_code == 201, response.text
    provider = {"reference": "Organization/site-1", "display": "Hallmark Health System"}
    expected = expected_read(SYNTHEA_ENCOUNTER, "1", provider)
    assert without_meta(response.json()) == expected
    assert without_meta(client.get(f"{BASE}/encounter/1/").json()) == expected
    row = stay_row(engine)
    assert (row["patient_num"], row["status"], row["class_code"], row["type_dos"]) == (
        1,
        "finished",
        "AMB",
        "Ambulatoire",
    )
    assert row["entry_date"].replace(tzinfo=None).isoformat() == "2012-03-09T09:25:24"
    assert (row["service_org_level"], row["service_org_num"]) == ("site", context["site"])
    assert (row["entry_mode"], row["out_mode"]) == ("gp", None)  # a text only: kept
    assert row["encounter_num"] is None  # the official identifier is another system's


def test_serviceprovider_outside_the_tree_is_kept_as_sent(client, context, engine):
    for provider in (
        {"reference": "Organization?identifier=https://github.com/synthetichealth/synthea|x"},
        {"reference": "Organization/org-3", "display": "Aetna"},
        {"display": "A clinic"},
    ):
        body = dict(SYNTHEA_ENCOUNTER, serviceProvider=provider)
        response = client.post(f"{BASE}/Encounter", json=body)
        assert response.status_code == 201, response.text
        read = client.get(f"{BASE}/Encounter/{response.json()['id']}").json()
        assert read["serviceProvider"] == provider
    with engine.connect() as conn:
        levels = conn.execute(select(dwh_patient_stay.c.service_org_level)).scalars().all()
    assert levels == [None, None, None]


def test_several_identifiers_the_first_usual_one_in_the_column(client, context, engine):
    identifiers = [
        {"use": "official", "system": "urn:other", "value": "O-1"},
        {"system": "urn:his:visit", "value": "V-1"},
        {"use": "secondary", "value": "V-OLD", "assigner": {"reference": "Organization/x-9"}},
    ]
    body = dict(SYNTHEA_ENCOUNTER, identifier=identifiers)
    response = client.post(f"{BASE}/Encounter", json=body)
    assert response.status_code == 201, response.text
    assert response.json()["identifier"] == [{"use": "official", "value": "1"}, *identifiers]
    assert stay_row(engine)["encounter_num"] == "V-1"


@pytest.mark.parametrize(
    ("klass", "status", "answered", "columns"),
    [
        (
            {"system": ACT_CODE, "code": "VR", "display": "virtual"},
            "arrived",
            {"system": ACT_CODE, "code": "VR", "display": "virtual"},
            ("VR", None),
        ),
        (
            {"system": "http://example.org/classes", "code": "HOME-CARE"},
            "unknown",
            {"system": "http://example.org/classes", "code": "HOME-CARE"},
            ("HOME-CARE", None),
        ),
        (
            {"code": "EMER", "display": "emergency"},
            "triaged",
            {"system": ACT_CODE, "code": "EMER", "display": "emergency"},
            ("EMER", "Urgence"),
        ),
    ],
)
def test_every_r4b_class_and_status_is_stored(
    client, context, engine, klass, status, answered, columns
):
    body = dict(SYNTHEA_ENCOUNTER, status=status, **{"class": klass})
    response = client.post(f"{BASE}/Encounter", json=body)
    assert response.status_code == 201, response.text
    read = client.get(f"{BASE}/Encounter/1").json()
    assert (read["class"], read["status"]) == (answered, status)
    row = stay_row(engine)
    assert (row["class_code"], row["type_dos"], row["status"]) == (*columns, status)


def test_movement_with_kept_elements(client, context, engine):
    assert client.post(f"{BASE}/Encounter", json=SYNTHEA_ENCOUNTER).status_code == 201
    movement = copy.deepcopy(SYNTHEA_ENCOUNTER)
    movement["partOf"] = {"reference": "Encounter/1"}
    movement["serviceProvider"] = {"reference": "Organization/unit-1"}
    movement.pop("identifier")
    response = client.post(f"{BASE}/Encounter", json=movement)
    assert response.status_code == 201, response.text
    provider = {"reference": "Organization/unit-1", "display": "Intensive Care Unit"}
    expected = expected_read(dict(movement, identifier=[]), "movement-1", provider)
    assert without_meta(client.get(f"{BASE}/Encounter/movement-1").json()) == expected
    row = stay_row(engine, dwh_patient_mvt)
    assert (row["stay_num"], row["unit_num"], row["type_mvt"]) == (1, context["unit"], "A")


def test_carebundle_encounter_reads_back_unchanged(client, context):
    carebundle = {
        "resourceType": "Encounter",
        "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'},
        "status": "finished",
        "class": {"system": ACT_CODE, "code": "AMB", "display": "ambulatory"},
        "type": [{"text": "Ambulatory visit"}],
        "subject": {"reference": "Patient/1"},
        "period": {"start": "2026-01-01T09:00:00Z", "end": "2026-01-01T09:30:00Z"},
    }
    response = client.post(f"{BASE}/Encounter", json=carebundle)
    assert response.status_code == 201, response.text
    expected = dict(carebundle, id="1", identifier=[{"use": "official", "value": "1"}])
    assert without_meta(client.get(f"{BASE}/Encounter/1").json()) == expected


def test_put_of_the_read_changes_nothing(client, context):
    client.post(f"{BASE}/Encounter", json=SYNTHEA_ENCOUNTER)
    read = client.get(f"{BASE}/Encounter/1").json()
    response = client.put(f"{BASE}/Encounter/1", json=without_meta(read))
    assert response.status_code == 200, response.text
    assert without_meta(response.json()) == without_meta(read)
