"""Content negotiation and `Prefer: return=...` (CONTRACT section 10), raw HTTP."""

from __future__ import annotations

import pytest

from tests.factories import seed_procedure_context

BASE = "/v4.3.0"
PATIENT = {
    "resourceType": "Patient",
    "identifier": [{"system": "HIS", "value": "IPP1"}],
    "gender": "female",
    "birthDate": "1970-01-01",
}


@pytest.fixture
def patient(client):
    assert client.post(f"{BASE}/Patient", json=PATIENT).status_code == 201
    return f"{BASE}/Patient/1"


@pytest.mark.parametrize(
    "accept",
    [
        None,
        "*/*",
        "application/json",
        "application/fhir+json",
        "application/fhir+json; fhirVersion=4.3",
        "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        "application/fhir+xml;q=1, application/fhir+json;q=0.5",
    ],
)
def test_json_accepting_clients_get_json(client, patient, accept):
    headers = {"accept": accept} if accept else {}
    response = client.get(patient, headers=headers)
    assert response.status_code == 200
    assert "json" in response.headers["content-type"]


@pytest.mark.parametrize(
    "accept",
    ["application/fhir+xml", "application/xml", "application/fhir+xml, text/xml", "text/plain"],
)
def test_xml_only_clients_get_406(client, patient, accept):
    for response in (
        client.get(patient, headers={"accept": accept}),
        client.get(f"{BASE}/Patient", headers={"accept": accept}),
        client.get(f"{BASE}/metadata", headers={"accept": accept}),
        client.delete(patient, headers={"accept": accept}),
    ):
        assert response.status_code == 406
        assert response.json()["issue"][0]["code"] == "not-supported"
    assert client.get(patient).status_code == 200  # the DELETE did not run


@pytest.mark.parametrize("value", ["xml", "application/fhir+xml", "text/xml", "html"])
def test_format_other_than_json_is_406(client, patient, value):
    response = client.get(patient, params={"_format": value})
    assert response.status_code == 406


def test_pretty_indents(client, patient):
    compact = client.get(patient).text
    pretty = client.get(patient, params={"_pretty": "true"}).text
    assert "\n" not in compact
    assert pretty.startswith("{\n  ")
    bundle = client.get(f"{BASE}/Patient", params={"_pretty": "true"}).text
    assert bundle.startswith("{\n  ")


def test_prefer_return(client, engine):
    seed_procedure_context(engine)  # Patient/1 exists: the next one is 2
    minimal = client.post(
        f"{BASE}/Patient",
        json=dict(PATIENT, identifier=[{"value": "IPP2"}]),
        headers={"prefer": "return=minimal"},
    )
    assert minimal.status_code == 201
    assert minimal.content == b""
    assert minimal.headers["location"].endswith("/Patient/2")
    outcome = client.put(
        f"{BASE}/Patient/2",
        json=dict(PATIENT, id="2", identifier=[{"value": "IPP2"}], gender="male"),
        headers={"prefer": "return=OperationOutcome"},
    )
    assert outcome.status_code == 200
    body = outcome.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["severity"] == "information"
    assert outcome.headers["etag"] == 'W/"2"'
    full = client.patch(
        f"{BASE}/Patient/2", json={"gender": "female"}, headers={"prefer": "return=representation"}
    )
    assert full.json()["resourceType"] == "Patient" and full.json()["gender"] == "female"
    read = client.get(f"{BASE}/Patient/2", headers={"prefer": "return=minimal"})
    assert read.json()["resourceType"] == "Patient"  # Prefer is for writes
