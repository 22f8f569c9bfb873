"""getting-started/quickstart.md (and the runnable parts of getting-started/index.md),
replayed in order through the HTTP API."""

from __future__ import annotations

from typing import Any

from codoc_fhir.warehouse.schema import dwh_patient, dwh_patient_ipphist, dwh_patient_stay
from tests.factories import count_rows
from tests.guides.steps import BASE, expect, issue

PATIENT = {
    "resourceType": "Patient",
    "identifier": [{"use": "usual", "value": "123456789"}],
    "name": [{"family": "Smith", "given": ["John", "Michael"]}],
    "gender": "male",
    "birthDate": "1980-05-15",
}
TELECOM = [{"system": "phone", "value": "01 23 45 67 89", "use": "home"}]


def organization(code: str, name: str, type_code: str, parent: str | None = None) -> dict:
    """The organization bodies of steps 5.1 to 5.3."""
    body: dict[str, Any] = {
        "resourceType": "Organization",
        "identifier": [{"use": "usual", "value": code}],
        "name": name,
        "type": [{"coding": [{"code": type_code}]}],
    }
    if parent is not None:
        body["partOf"] = {"reference": parent}
    return body


def test_quickstart_replayed_in_order(client, engine):
    # 1. the connection check
    metadata = expect(client.get(f"{BASE}/metadata/"), 200)
    assert metadata["resourceType"] == "CapabilityStatement"
    assert metadata["fhirVersion"] == "4.3.0"

    # 2. create a patient: the documented answer, given names joined into one string
    patient = expect(client.post(f"{BASE}/patient/", json=PATIENT), 201)
    patient_id = patient["id"]
    assert patient["identifier"] == [
        {"use": "official", "value": patient_id},
        {"use": "usual", "system": "HIS", "value": "123456789"},
    ]
    assert patient["name"] == [{"family": "Smith", "given": ["John Michael"]}]
    assert patient["gender"] == "male"
    assert patient["birthDate"] == "1980-05-15"

    # 3. read it back with the returned id
    read = expect(client.get(f"{BASE}/patient/{patient_id}/"), 200)
    assert read["name"][0]["family"] == "Smith"
    assert read["name"][0]["given"][0] == "John Michael"
    assert read["birthDate"] == "1980-05-15"

    # 4. PATCH a phone number: only telecom changes
    patched = expect(client.patch(f"{BASE}/patient/{patient_id}/", json={"telecom": TELECOM}), 200)
    assert patched["telecom"][0]["value"] == "01 23 45 67 89"
    assert patched["telecom"] == TELECOM
    assert patched["name"] == read["name"]
    assert patched["birthDate"] == "1980-05-15"

    # 5.1 a site (HL7 code prov), 5.2 a department under it (lower-case reference, as the
    # guide writes it), 5.3 a unit (team) under the department
    site = expect(
        client.post(
            f"{BASE}/organization/",
            json=organization("HOSP001", "Paris University Hospital", "prov"),
        ),
        201,
    )
    assert site["id"].startswith("site-")
    department = expect(
        client.post(
            f"{BASE}/organization/",
            json=organization(
                "CARD001", "Cardiology Department", "dept", f"organization/{site['id']}"
            ),
        ),
        201,
    )
    assert department["id"].startswith("department-")
    assert department["partOf"] == {
        "reference": f"Organization/{site['id']}",
        "display": "Paris University Hospital",
    }
    unit = expect(
        client.post(
            f"{BASE}/organization/",
            json=organization(
                "ICU001", "Intensive Care Unit", "team", f"organization/{department['id']}"
            ),
        ),
        201,
    )
    assert unit["id"].startswith("unit-")
    assert unit["partOf"]["reference"] == f"Organization/{department['id']}"
    assert [coding["code"] for coding in unit["type"][0]["coding"]] == ["unit", "team"]

    # 6. an admission in the cardiology department
    encounter = expect(
        client.post(
            f"{BASE}/encounter/",
            json={
                "resourceType": "Encounter",
                "identifier": [{"use": "usual", "value": "ADM001"}],
                "status": "in-progress",
                "class": {"code": "IMP"},
                "subject": {"reference": f"Patient/{patient_id}"},
                "serviceProvider": {"reference": f"Organization/{department['id']}"},
                "period": {"start": "2024-01-15T08:00:00Z"},
                "hospitalization": {
                    "admitSource": {"coding": [{"code": "H"}]},
                    "dischargeDisposition": {"coding": [{"code": "01"}]},
                },
            },
        ),
        201,
    )
    assert encounter["status"] == "in-progress"
    assert encounter["class"]["code"] == "IMP"
    assert encounter["subject"] == {"reference": f"Patient/{patient_id}"}
    assert encounter["serviceProvider"]["reference"] == f"Organization/{department['id']}"
    assert encounter["period"]["start"] == "2024-01-15T08:00:00Z"
    assert encounter["hospitalization"]["admitSource"]["coding"][0]["code"] == "H"
    assert encounter["hospitalization"]["dischargeDisposition"]["coding"][0]["code"] == "01"
    assert {"use": "usual", "value": "ADM001"}.items() <= encounter["identifier"][1].items()

    # 7. delete the patient. The guide expects 204 at once, but the contract blocks a delete
    # while other resources reference the target (409 naming them): the admission of step 6
    # still points at the patient. A user deletes the admission first, then the patient.
    diagnostics = issue(client.delete(f"{BASE}/patient/{patient_id}/"), 409, "conflict")
    assert diagnostics == f"Patient {patient_id} is referenced by 1 Encounter"
    assert count_rows(engine, dwh_patient) == 1
    expect(client.delete(f"{BASE}/encounter/{encounter['id']}/"), 204)
    assert count_rows(engine, dwh_patient_stay) == 0
    assert expect(client.delete(f"{BASE}/patient/{patient_id}/"), 204) is None
    assert count_rows(engine, dwh_patient) == 0
    assert count_rows(engine, dwh_patient_ipphist) == 0
    issue(client.get(f"{BASE}/patient/{patient_id}/"), 410, "deleted")  # ids are never reused


def test_quickstart_status_code_table(client):
    """The status codes the quickstart's table lists, each provoked once."""
    issue(
        client.post(
            f"{BASE}/patient/",
            content=b'{"resourceType": "Patient",',
            headers={"Content-Type": "application/json"},
        ),
        400,
        "invalid",
    )
    missing_birth_date = {key: value for key, value in PATIENT.items() if key != "birthDate"}
    issue(client.post(f"{BASE}/patient/", json=missing_birth_date), 400, "required")
    issue(client.get(f"{BASE}/patient/999/"), 404, "not-found")
    # The table lists 405 for "GET on list"; the contract answers a searchset Bundle instead
    # (search is [beyond] the documented system). A method no path supports is still 405.
    bundle = expect(client.get(f"{BASE}/patient/"), 200)
    assert bundle["resourceType"] == "Bundle"
    assert bundle["type"] == "searchset"
    assert bundle["total"] == 0
    issue(client.post(f"{BASE}/patient/1/", json=PATIENT), 405, "not-supported")


def test_getting_started_endpoints_and_headers(client):
    """getting-started/index.md: the five endpoints, JSON headers and the version paths."""
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    created = client.post(f"{BASE}/patient/", json=PATIENT, headers=headers)
    patient = expect(created, 201)
    # asked for application/json: answered application/json
    assert created.headers["content-type"].startswith("application/json")
    path = f"{BASE}/patient/{patient['id']}/"
    expect(client.get(path, headers=headers), 200)
    replaced = expect(client.put(path, json=dict(patient, gender="other"), headers=headers), 200)
    assert replaced["gender"] == "other"
    patched = expect(client.patch(path, json={"birthDate": "1980-05"}, headers=headers), 200)
    assert patched["birthDate"] == "1980-05"
    assert patched["gender"] == "other"
    expect(client.delete(path, headers=headers), 204)
    # /v5.0.0/ is announced as not available yet: 501 with an OperationOutcome
    issue(client.get(f"/v5.0.0/patient/{patient['id']}/"), 501, "not-supported")
