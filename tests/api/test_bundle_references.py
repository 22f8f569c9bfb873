"""References inside a transaction Bundle, as other systems write them: relative references
read against an absolute fullUrl (the official R4B examples), and conditional references
(`Patient?identifier=...`, as Synthea writes them)."""

from __future__ import annotations

from tests.api.test_bundles import patient, post_entry, procedure

BASE = "/v4.3.0"
EXAMPLE_BASE = "http://hl7.org/fhir"


def _transaction(*entries: dict) -> dict:
    return {"resourceType": "Bundle", "type": "transaction", "entry": list(entries)}


def _created(answer) -> list[str]:
    assert answer.status_code == 200, answer.text
    locations = [entry["response"]["location"] for entry in answer.json()["entry"]]
    return [f"{BASE}/{location.split('/_history')[0]}" for location in locations]


def test_relative_reference_names_the_entry_of_its_absolute_full_url(client, engine):
    bundle = _transaction(
        post_entry(f"{EXAMPLE_BASE}/Procedure/p1", procedure("Patient/example")),
        post_entry(f"{EXAMPLE_BASE}/Patient/example", patient("IPP-EX")),
    )
    procedure_url, patient_url = _created(client.post(f"{BASE}/", json=bundle))
    patient_id = patient_url.rsplit("/", 1)[1]
    assert client.get(procedure_url).json()["subject"] == {"reference": f"Patient/{patient_id}"}


def test_absolute_reference_to_an_entry_full_url(client, engine):
    bundle = _transaction(
        post_entry(None, procedure(f"{EXAMPLE_BASE}/Patient/abs")),
        post_entry(f"{EXAMPLE_BASE}/Patient/abs", patient("IPP-ABS")),
    )
    procedure_url, patient_url = _created(client.post(f"{BASE}/", json=bundle))
    assert client.get(procedure_url).json()["subject"]["reference"] == patient_url.removeprefix(
        f"{BASE}/"
    )


def test_conditional_reference_names_the_one_match(client, engine):
    assert client.post(f"{BASE}/Patient", json=patient("IPP-COND")).status_code == 201
    bundle = _transaction(post_entry(None, procedure("Patient?identifier=HIS|IPP-COND")))
    (procedure_url,) = _created(client.post(f"{BASE}/", json=bundle))
    assert client.get(procedure_url).json()["subject"] == {"reference": "Patient/1"}


def test_conditional_reference_without_a_match_stays_as_sent_in_a_kept_element(client, engine):
    assert client.post(f"{BASE}/Patient", json=patient("IPP-K")).status_code == 201
    body = dict(
        procedure("Patient/1"),
        recorder={"reference": "Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|999"},
    )
    (procedure_url,) = _created(client.post(f"{BASE}/", json=_transaction(post_entry(None, body))))
    recorder = client.get(procedure_url).json()["recorder"]
    assert recorder == {"reference": "Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|999"}


def test_conditional_reference_of_a_mapped_element_without_match_is_refused(client, engine):
    bundle = _transaction(post_entry(None, procedure("Patient?identifier=HIS|NOBODY")))
    answer = client.post(f"{BASE}/", json=bundle)
    assert answer.status_code in (400, 404), answer.text
    assert answer.json()["resourceType"] == "OperationOutcome"
