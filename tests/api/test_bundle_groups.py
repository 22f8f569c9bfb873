"""Runs of plain creates in a transaction Bundle are written together (api/bundle_groups.py):
the answer, the stored rows and the errors are those of one create per entry."""

from __future__ import annotations

from codoc_fhir.interactions import ingest
from codoc_fhir.warehouse.schema import dwh_data, dwh_patient
from tests.api.test_bundles import BASE, PAT, patient, post_entry, procedure
from tests.factories import count_rows


def synthea_like(count: int) -> dict:
    """One Patient and `count` Procedures naming it by its urn:uuid, as Synthea posts."""
    entries = [post_entry(PAT, patient())]
    for day in range(count):
        body = procedure(PAT)
        body["performedDateTime"] = f"2024-01-{day + 1:02d}T14:00:00Z"
        entries.append(post_entry(None, body))
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def test_a_group_of_creates_answers_each_entry_and_stores_each_row(client, engine):
    response = client.post(f"{BASE}/", json=synthea_like(5))
    assert response.status_code == 200, response.text
    entries = response.json()["entry"]
    assert [entry["response"]["status"] for entry in entries] == ["201 Created"] * 6
    locations = [entry["response"]["location"] for entry in entries]
    assert locations[0] == "Patient/1"
    assert sorted(locations[1:]) == [f"Procedure/{num}" for num in range(1, 6)]
    for entry in entries[1:]:
        assert entry["response"]["etag"] == 'W/"1"'
        stored = client.get(f"{BASE}/{entry['response']['location']}").json()
        assert stored == entry["resource"]
        assert stored["subject"]["reference"] == "Patient/1"
    days = sorted(entry["resource"]["performedDateTime"][:10] for entry in entries[1:])
    assert days == [f"2024-01-{day:02d}" for day in range(1, 6)]
    assert count_rows(engine, dwh_data) == 5


def test_a_refused_entry_in_a_group_names_itself_and_nothing_is_stored(client, engine):
    bundle = synthea_like(4)
    bundle["entry"][3]["resource"]["status"] = "not-a-status"
    response = client.post(f"{BASE}/", json=bundle)
    assert response.status_code == 400
    issue = response.json()["issue"][0]
    assert issue["diagnostics"].startswith("Bundle.entry[3] (POST Procedure)")
    assert count_rows(engine, dwh_patient) == 0
    assert count_rows(engine, dwh_data) == 0


def test_patients_sharing_an_identifier_in_one_bundle_are_a_conflict(client, engine):
    same = [post_entry(None, patient("IPP7")), post_entry(None, patient("IPP7"))]
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": same}
    response = client.post(f"{BASE}/", json=bundle)
    assert response.status_code == 409, response.text
    assert response.json()["issue"][0]["diagnostics"].startswith("Bundle.entry[1]")
    assert count_rows(engine, dwh_patient) == 0


def test_the_procedures_naming_the_patient_are_created_as_one_group(client, monkeypatch):
    groups: list[int] = []
    create_resources = ingest.create_resources

    def recording(db, caller, kind, bodies):
        groups.append(len(bodies))
        return create_resources(db, caller, kind, bodies)

    monkeypatch.setattr(ingest, "create_resources", recording)
    assert client.post(f"{BASE}/", json=synthea_like(5)).status_code == 200
    assert groups == [5]  # the Patient, named by the others, ran alone before them
