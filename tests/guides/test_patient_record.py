"""guides/patient-record.md replayed in order: organization, patient, stay, document, lab
results, then the read-back of step 6; and the guide's "Complete Script"."""

from __future__ import annotations

import base64

from sqlalchemy import select

from codoc_fhir.warehouse.schema import dwh_text, dwh_thesaurus_data, dwh_thesaurus_unit
from tests.factories import count_rows
from tests.guides.steps import BASE, expect, issue, usual_identifier

HTML = """
<h1>Admission Report</h1>
<h2>Reason</h2>
<p>Chest pain</p>
<h2>Clinical Examination</h2>
<p>Patient conscious, BP 140/90, HR 85</p>
<h2>Diagnosis</h2>
<p>Suspected unstable angina</p>
"""
UNIT = {
    "resourceType": "Organization",
    "identifier": [{"value": "CARDIO_A"}],
    "type": [{"coding": [{"code": "unit"}]}],
    "name": "Cardiology Unit A",
}


def create_unit(client, engine) -> str:
    """Step 1. The guide posts the unit alone; the contract requires a unit's partOf (a
    department), so that request is 400 `required` and stores nothing. A user then creates
    the parents first (a site, whose partOf is optional, and a department) and posts the
    guide's unit again with partOf. Returns the unit id."""
    diagnostics = issue(client.post(f"{BASE}/organization/", json=UNIT), 400, "required")
    assert "partOf" in diagnostics
    assert count_rows(engine, dwh_thesaurus_unit) == 0
    site = expect(
        client.post(
            f"{BASE}/organization/",
            json={
                "resourceType": "Organization",
                "identifier": [{"value": "CHU"}],
                "type": [{"coding": [{"code": "site"}]}],
                "name": "University Hospital",
            },
        ),
        201,
    )
    department = expect(
        client.post(
            f"{BASE}/organization/",
            json={
                "resourceType": "Organization",
                "identifier": [{"value": "CARDIO"}],
                "type": [{"coding": [{"code": "department"}]}],
                "name": "Cardiology Department",
                "partOf": {"reference": f"Organization/{site['id']}"},
            },
        ),
        201,
    )
    unit = expect(
        client.post(
            f"{BASE}/organization/",
            json=dict(UNIT, partOf={"reference": f"Organization/{department['id']}"}),
        ),
        201,
    )
    assert unit["name"] == "Cardiology Unit A"
    assert usual_identifier(unit) == "CARDIO_A"
    assert unit["type"][0]["coding"][0]["code"] == "unit"
    return str(unit["id"])


def create_patient(client, unit_id: str, family: str, given: list[str]) -> dict:
    """Step 2: the patient managed by the unit."""
    patient = expect(
        client.post(
            f"{BASE}/patient/",
            json={
                "resourceType": "Patient",
                "identifier": [{"value": "IPP987654"}],
                "name": [{"family": family, "given": given}],
                "gender": "female",
                "birthDate": "1975-03-20",
                "managingOrganization": {"reference": f"Organization/{unit_id}"},
            },
        ),
        201,
    )
    assert patient["name"][0]["family"] == family
    assert patient["managingOrganization"] == {
        "reference": f"Organization/{unit_id}",
        "display": "Cardiology Unit A",
    }
    return patient


def create_stay(client, patient_id: str, unit_id: str) -> dict:
    """Step 3: the stay, in progress, in the unit."""
    stay = expect(
        client.post(
            f"{BASE}/encounter/",
            json={
                "resourceType": "Encounter",
                "status": "in-progress",
                "class": {"code": "IMP"},
                "subject": {"reference": f"Patient/{patient_id}"},
                "serviceProvider": {"reference": f"Organization/{unit_id}"},
                "period": {"start": "2024-11-05T08:00:00Z"},
            },
        ),
        201,
    )
    assert "partOf" not in stay  # a stay, not a movement
    assert stay["subject"] == {"reference": f"Patient/{patient_id}"}
    return stay


def lab_result(patient_id: str, stay_id: str, coding: dict, value: float, unit: str) -> dict:
    """Step 5's body."""
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [coding]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "encounter": {"reference": f"Encounter/{stay_id}"},
        "effectiveDateTime": "2024-11-05T10:00:00Z",
        "valueQuantity": {"value": value, "unit": unit},
    }


def test_patient_record_guide_replayed_in_order(client, engine):
    unit_id = create_unit(client, engine)
    patient = create_patient(client, unit_id, "Smith", ["Emma", "Marie"])
    patient_id = patient["id"]
    stay_id = create_stay(client, patient_id, unit_id)["id"]

    # step 4: the HTML admission report, base64, with a person and the unit as authors
    encoded = base64.b64encode(HTML.encode()).decode()
    document = expect(
        client.post(
            f"{BASE}/documentreference/",
            json={
                "resourceType": "DocumentReference",
                "status": "current",
                "subject": {"reference": f"Patient/{patient_id}"},
                "context": {"encounter": [{"reference": f"Encounter/{stay_id}"}]},
                "author": [
                    {"display": "Dr. Dubois"},
                    {"reference": f"Organization/{unit_id}", "display": "Cardiology A"},
                ],
                "date": "2024-11-05T09:30:00Z",
                "content": [
                    {
                        "attachment": {
                            "contentType": "text/html",
                            "data": encoded,
                            "title": "Admission Report",
                        }
                    }
                ],
            },
        ),
        201,
    )
    document_id = document["id"]
    assert document["author"][0] == {"display": "Dr. Dubois"}
    # the server answers the organization's own name as display, not the one sent
    assert document["author"][1] == {
        "reference": f"Organization/{unit_id}",
        "display": "Cardiology Unit A",
    }
    assert document["context"]["encounter"] == [{"reference": f"Encounter/{stay_id}"}]
    with engine.connect() as conn:
        text = conn.execute(select(dwh_text.c.text)).scalar_one()
    assert "Suspected unstable angina" in text
    assert "<h1>" not in text

    # step 5: hemoglobin and blood glucose (Biologie thesaurus, created on first use)
    obs1 = expect(
        client.post(
            f"{BASE}/observation/",
            json=lab_result(
                patient_id,
                stay_id,
                {"code": "HEMOGLOBIN", "display": "Hemoglobin"},
                13.5,
                "g/dL",
            ),
        ),
        201,
    )
    obs2 = expect(
        client.post(
            f"{BASE}/observation/",
            json=lab_result(
                patient_id, stay_id, {"code": "GLUCOSE", "display": "Blood Glucose"}, 1.05, "g/L"
            ),
        ),
        201,
    )
    assert obs1["id"] != obs2["id"]
    assert obs1["valueQuantity"]["value"] == 13.5
    assert obs1["valueQuantity"]["unit"] == "g/dL"
    assert obs2["code"]["coding"][0]["code"] == "GLUCOSE"
    assert obs2["code"]["coding"][0]["display"] == "Blood Glucose"
    assert obs2["encounter"] == {"reference": f"Encounter/{stay_id}"}
    assert count_rows(engine, dwh_thesaurus_data) == 2

    # step 6: read the record back. The guide prints identifier[0] as the IPP; the contract
    # answers the official identifier (the id) first, so the IPP is the usual one, [1].
    patient_data = expect(client.get(f"{BASE}/patient/{patient_id}/"), 200)
    stay_data = expect(client.get(f"{BASE}/encounter/{stay_id}/"), 200)
    document_data = expect(client.get(f"{BASE}/documentreference/{document_id}/"), 200)
    assert patient_data["name"][0]["family"] == "Smith"
    assert patient_data["name"][0]["given"][0] == "Emma Marie"
    assert patient_data["identifier"][0] == {"use": "official", "value": patient_id}
    assert patient_data["identifier"][1]["value"] == "IPP987654"
    assert patient_data["gender"] == "female"
    assert patient_data["birthDate"] == "1975-03-20"
    assert stay_data["status"] == "in-progress"
    assert stay_data["period"]["start"] == "2024-11-05T08:00:00Z"
    attachment = document_data["content"][0]["attachment"]
    assert attachment["title"] == "Admission Report"
    assert attachment["data"] == encoded  # byte for byte what was sent
    for observation in (obs1, obs2):
        assert (
            expect(client.get(f"{BASE}/observation/{observation['id']}/"), 200)["valueQuantity"]
            == observation["valueQuantity"]
        )


def test_patient_record_complete_script(client, engine):
    """The guide's complete script (another name, a short document, one result without a
    display). Its unit needs the same parents as step 1."""
    unit_id = create_unit(client, engine)
    patient_id = create_patient(client, unit_id, "Martin", ["Sophie", "Marie"])["id"]
    stay_id = create_stay(client, patient_id, unit_id)["id"]
    html = "<h1>Admission Report</h1><p>Chest pain</p>"
    document = expect(
        client.post(
            f"{BASE}/documentreference/",
            json={
                "resourceType": "DocumentReference",
                "status": "current",
                "subject": {"reference": f"Patient/{patient_id}"},
                "context": {"encounter": [{"reference": f"Encounter/{stay_id}"}]},
                "date": "2024-11-05T09:30:00Z",
                "content": [
                    {
                        "attachment": {
                            "contentType": "text/html",
                            "data": base64.b64encode(html.encode()).decode(),
                        }
                    }
                ],
            },
        ),
        201,
    )
    obs1 = expect(
        client.post(
            f"{BASE}/observation/",
            json=lab_result(patient_id, stay_id, {"code": "HEMOGLOBIN"}, 13.5, "g/dL"),
        ),
        201,
    )
    assert document["id"]
    assert obs1["code"]["coding"][0]["code"] == "HEMOGLOBIN"
    assert obs1["subject"] == {"reference": f"Patient/{patient_id}"}
