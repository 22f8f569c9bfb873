"""`_summary` on searches and reads, `_elements` on reads (CONTRACT section 10)."""

from __future__ import annotations

import pytest

from tests.factories import make_patient
from tests.resources.test_observation_lab import DOC_OBSERVATION

BASE = "/v4.3.0"
SUBSETTED = "SUBSETTED"
PATIENT = {
    "resourceType": "Patient",
    "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">Ann</div>'},
    "identifier": [{"system": "HIS", "value": "IPP1"}],
    "name": [{"family": "Martin", "given": ["Ann"]}],
    "gender": "female",
    "birthDate": "1970-01-01",
}


def tags(resource):
    return [tag["code"] for tag in resource["meta"].get("tag", [])]


@pytest.fixture
def patient(client):
    created = client.post(f"{BASE}/Patient", json=PATIENT)
    assert created.status_code == 201
    return f"{BASE}/Patient/{created.json()['id']}"


def test_summary_true_keeps_the_summary_elements(client, patient):
    read = client.get(patient, params={"_summary": "true"}).json()
    assert {"identifier", "name", "gender", "birthDate"} <= set(read)
    assert SUBSETTED in tags(read)
    searched = client.get(f"{BASE}/Patient", params={"_summary": "true"}).json()
    assert SUBSETTED in tags(searched["entry"][0]["resource"])


def test_summary_text_and_data(client, patient):
    text = client.get(patient, params={"_summary": "text"}).json()
    assert set(text) <= {"resourceType", "id", "meta", "text"}
    assert SUBSETTED in tags(text)
    data = client.get(patient, params={"_summary": "data"}).json()
    assert "text" not in data and data["gender"] == "female"
    full = client.get(patient, params={"_summary": "false"}).json()
    assert "tag" not in full["meta"]


def test_summary_count_on_search_and_errors(client, patient):
    counted = client.get(f"{BASE}/Patient", params={"_summary": "count"}).json()
    assert counted["total"] == 1 and "entry" not in counted
    assert client.get(patient, params={"_summary": "count"}).status_code == 400
    assert client.get(patient, params={"_summary": "all"}).status_code == 400


def test_elements_on_read(client, patient):
    read = client.get(patient, params={"_elements": "gender,name"}).json()
    assert read["gender"] == "female" and read["name"][0]["family"] == "Martin"
    assert "birthDate" not in read and "identifier" not in read
    assert SUBSETTED in tags(read)


def test_summary_leaves_out_the_elements_not_in_summary(client, engine):
    make_patient(engine)
    body = dict(DOC_OBSERVATION, note=[{"text": "fasting"}])
    created = client.post(f"{BASE}/Observation", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["note"] == [{"text": "fasting"}]
    match = client.get(f"{BASE}/Observation?_summary=true").json()["entry"][0]["resource"]
    assert "note" not in match
    assert match["code"] == created.json()["code"]
    assert match["valueQuantity"] == created.json()["valueQuantity"]
    data = client.get(f"{BASE}/Observation/1?_summary=data").json()
    assert data["note"] == [{"text": "fasting"}] and SUBSETTED in tags(data)
