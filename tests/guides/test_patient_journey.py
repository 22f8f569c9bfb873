"""guides/patient-journey.md replayed in order: admission, three movements, documents,
results, discharge (PUT of the last movement and of the stay); and the complete script."""

from __future__ import annotations

import base64
from typing import Any

from codoc_fhir.warehouse.schema import dwh_patient_mvt
from tests.factories import count_rows
from tests.guides.steps import BASE, expect

PATIENT = {
    "resourceType": "Patient",
    "identifier": [{"value": "IPP789456"}],
    "name": [{"family": "Johnson", "given": ["John"]}],
    "gender": "male",
    "birthDate": "1958-08-10",
}


def care_units(client) -> dict[str, dict]:
    """The guide's prerequisite: three care units it addresses by hard-coded ids 1, 2, 3.
    They are created here (a site and a department first: a unit needs a department) and
    addressed by the ids the server returned."""

    def post(code: str, level: str, name: str, parent: str | None = None) -> dict:
        body: dict[str, Any] = {
            "resourceType": "Organization",
            "identifier": [{"value": code}],
            "type": [{"coding": [{"code": level}]}],
            "name": name,
        }
        if parent:
            body["partOf"] = {"reference": f"Organization/{parent}"}
        return expect(client.post(f"{BASE}/organization/", json=body), 201)

    site = post("CHU", "site", "University Hospital")
    department = post("MED", "department", "Medicine", site["id"])
    return {
        key: post(key.upper(), "unit", name, department["id"])
        for key, name in [
            ("emergency", "Emergency"),
            ("cardio", "Cardiology"),
            ("icu", "Intensive Care"),
        ]
    }


def encounter(patient_id, unit_id, status, start, end=None, stay_id=None) -> dict:
    """A stay (no stay_id) or a movement of the stay, as the guide's steps send them."""
    body = {
        "resourceType": "Encounter",
        "status": status,
        "class": {"code": "IMP"},
        "subject": {"reference": f"Patient/{patient_id}"},
        "serviceProvider": {"reference": f"Organization/{unit_id}"},
        "period": {"start": start} if end is None else {"start": start, "end": end},
    }
    if stay_id is not None:
        body["partOf"] = {"reference": f"Encounter/{stay_id}"}
    return body


def document(patient_id, stay_id, date: str, html: str, title: str) -> dict:
    """A report attached to the stay (context.encounter points at the stay)."""
    return {
        "resourceType": "DocumentReference",
        "status": "current",
        "subject": {"reference": f"Patient/{patient_id}"},
        "context": {"encounter": [{"reference": f"Encounter/{stay_id}"}]},
        "date": date,
        "content": [
            {
                "attachment": {
                    "contentType": "text/html",
                    "data": base64.b64encode(html.encode()).decode(),
                    "title": title,
                }
            }
        ],
    }


def lab_result(patient_id, stay_id, code: str, display: str, value: float, unit: str) -> dict:
    """Step 6's body."""
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"code": code, "display": display}]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "encounter": {"reference": f"Encounter/{stay_id}"},
        "effectiveDateTime": "2024-11-05T21:00:00Z",
        "valueQuantity": {"value": value, "unit": unit},
    }


def test_patient_journey_guide_replayed_in_order(client, engine):
    units = care_units(client)
    emergency, cardio, icu = (units[key]["id"] for key in ("emergency", "cardio", "icu"))

    # step 1: patient and admission to the emergency unit
    patient = expect(client.post(f"{BASE}/patient/", json=PATIENT), 201)
    patient_id = patient["id"]
    stay = expect(
        client.post(
            f"{BASE}/encounter/",
            json=encounter(patient_id, emergency, "in-progress", "2024-11-05T08:30:00Z"),
        ),
        201,
    )
    stay_id = stay["id"]
    assert "partOf" not in stay
    assert stay["serviceProvider"]["reference"] == f"Organization/{emergency}"

    # step 2: the first movement, emergency 08:30 -> 14:00
    mvt1 = expect(
        client.post(
            f"{BASE}/encounter/",
            json=encounter(
                patient_id,
                emergency,
                "finished",
                "2024-11-05T08:30:00Z",
                "2024-11-05T14:00:00Z",
                stay_id,
            ),
        ),
        201,
    )
    assert mvt1["id"].startswith("movement-")
    assert mvt1["partOf"] == {"reference": f"Encounter/{stay_id}"}
    assert mvt1["status"] == "finished"
    assert mvt1["period"] == {"start": "2024-11-05T08:30:00Z", "end": "2024-11-05T14:00:00Z"}

    # step 3: the admission document
    doc1 = expect(
        client.post(
            f"{BASE}/documentreference/",
            json=document(
                patient_id,
                stay_id,
                "2024-11-05T13:45:00Z",
                "<h1>Emergency Admission</h1><p>ST segment elevation in anterior leads.</p>",
                "Emergency Admission Report",
            ),
        ),
        201,
    )

    # step 4: transfer to cardiology, then its report
    mvt2 = expect(
        client.post(
            f"{BASE}/encounter/",
            json=encounter(
                patient_id,
                cardio,
                "finished",
                "2024-11-05T14:00:00Z",
                "2024-11-05T20:00:00Z",
                stay_id,
            ),
        ),
        201,
    )
    assert mvt2["serviceProvider"]["reference"] == f"Organization/{cardio}"
    doc2 = expect(
        client.post(
            f"{BASE}/documentreference/",
            json=document(
                patient_id,
                stay_id,
                "2024-11-05T19:50:00Z",
                "<h1>Cardiology Management</h1><p>Transfer to Intensive Care.</p>",
                "Cardiology Report",
            ),
        ),
        201,
    )

    # step 5: transfer to intensive care, still in progress
    mvt3 = expect(
        client.post(
            f"{BASE}/encounter/",
            json=encounter(patient_id, icu, "in-progress", "2024-11-05T20:00:00Z", stay_id=stay_id),
        ),
        201,
    )
    mvt3_id = mvt3["id"]
    assert mvt3["status"] == "in-progress"
    assert "end" not in mvt3["period"]
    assert count_rows(engine, dwh_patient_mvt) == 3

    # step 6: troponin and BNP
    obs1 = expect(
        client.post(
            f"{BASE}/observation/",
            json=lab_result(patient_id, stay_id, "TROPONINE", "Troponin Ic", 15000, "ng/L"),
        ),
        201,
    )
    obs2 = expect(
        client.post(
            f"{BASE}/observation/",
            json=lab_result(patient_id, stay_id, "BNP", "BNP", 850, "pg/mL"),
        ),
        201,
    )
    assert obs1["valueQuantity"]["value"] == 15000
    assert obs2["valueQuantity"]["unit"] == "pg/mL"

    # step 7: close the ICU movement (PUT on /encounter/{movement id}/), then the stay
    mvt3_updated = expect(
        client.put(
            f"{BASE}/encounter/{mvt3_id}/",
            json=encounter(
                patient_id,
                icu,
                "finished",
                "2024-11-05T20:00:00Z",
                "2024-11-07T10:00:00Z",
                stay_id,
            ),
        ),
        200,
    )
    assert mvt3_updated["id"] == mvt3_id
    assert mvt3_updated["status"] == "finished"
    assert mvt3_updated["period"]["end"] == "2024-11-07T10:00:00Z"
    stay_updated = expect(
        client.put(
            f"{BASE}/encounter/{stay_id}/",
            json=encounter(
                patient_id, icu, "finished", "2024-11-05T08:30:00Z", "2024-11-07T10:00:00Z"
            ),
        ),
        200,
    )
    assert stay_updated["id"] == stay_id
    assert stay_updated["status"] == "finished"
    assert stay_updated["period"] == {
        "start": "2024-11-05T08:30:00Z",
        "end": "2024-11-07T10:00:00Z",
    }
    assert stay_updated["serviceProvider"]["reference"] == f"Organization/{icu}"
    doc3 = expect(
        client.post(
            f"{BASE}/documentreference/",
            json=document(
                patient_id,
                stay_id,
                "2024-11-07T10:00:00Z",
                "<h1>Discharge Report</h1><p>- Aspirin 75 mg/day</p>",
                "Discharge Report",
            ),
        ),
        201,
    )

    # the journey summary: IPP at identifier[1] (the official id comes first), the three
    # movements of the stay with their units, the three documents on the stay
    assert patient["identifier"][1]["value"] == "IPP789456"
    assert patient["name"][0]["given"][0] == "John"
    movements = [
        expect(client.get(f"{BASE}/encounter/{mvt['id']}/"), 200) for mvt in (mvt1, mvt2, mvt3)
    ]
    assert [m["serviceProvider"]["reference"] for m in movements] == [
        f"Organization/{unit}" for unit in (emergency, cardio, icu)
    ]
    assert {m["partOf"]["reference"] for m in movements} == {f"Encounter/{stay_id}"}
    assert all(m["status"] == "finished" for m in movements)
    for doc in (doc1, doc2, doc3):
        read = expect(client.get(f"{BASE}/documentreference/{doc['id']}/"), 200)
        assert read["context"]["encounter"] == [{"reference": f"Encounter/{stay_id}"}]
    assert [doc["date"] for doc in (doc1, doc2, doc3)] == [
        "2024-11-05T13:45:00Z",
        "2024-11-05T19:50:00Z",
        "2024-11-07T10:00:00Z",
    ]


def test_patient_journey_complete_script(client):
    """The complete script addresses its unit as `Organization/1`: a bare number in
    serviceProvider is read as a unit (docs/resources/encounter.md), the first one created."""
    units = care_units(client)
    patient_id = expect(client.post(f"{BASE}/patient/", json=PATIENT), 201)["id"]
    first_unit_number = units["emergency"]["id"].removeprefix("unit-")
    stay = expect(
        client.post(
            f"{BASE}/encounter/",
            json=encounter(patient_id, first_unit_number, "in-progress", "2024-11-05T08:30:00Z"),
        ),
        201,
    )
    assert stay["serviceProvider"]["reference"] == f"Organization/{units['emergency']['id']}"
    assert stay["serviceProvider"]["display"] == "Emergency"
