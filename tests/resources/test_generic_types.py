"""Every other R4B type is stored whole (CONTRACT section 9; docs/resources/other-types.md):
CRUD, history, conditional create, search on its R4B parameters, compartments."""

from __future__ import annotations

import copy

import pytest

from tests.factories import make_patient
from tests.resources import synthea_like
from tests.security.tokens import AUTH_ENV, bearer, hs256

BASE = "/v4.3.0"
NPI = "http://hl7.org/fhir/sid/us-npi"
CVX = "http://hl7.org/fhir/sid/cvx"
UCUM = "http://unitsofmeasure.org"

PRACTITIONER = {
    "resourceType": "Practitioner",
    "identifier": [{"system": NPI, "value": "9999912345"}],
    "active": True,
    "name": [{"family": "Müller", "given": ["Anna", "Maria"], "prefix": ["Dr."]}],
    "telecom": [{"system": "email", "value": "anna.muller@example.org", "use": "work"}],
    "address": [{"line": ["1 Main St"], "city": "Boston", "state": "MA", "country": "US"}],
    "gender": "female",
    "extension": [{"url": "http://example.org/seniority", "valueInteger": 12}],
}


def immunization(patient: str = "Patient/1", **changes) -> dict:
    body = {
        "resourceType": "Immunization",
        "status": "completed",
        "vaccineCode": {"coding": [{"system": CVX, "code": "140", "display": "Influenza"}]},
        "patient": {"reference": patient},
        "occurrenceDateTime": "2021-03-04T10:00:00+01:00",
        "primarySource": True,
        "lotNumber": "LOT-42a",
        "performer": [{"actor": {"reference": "Practitioner/999"}}],
        "doseQuantity": {"value": 0.5, "unit": "mL", "system": UCUM},
    }
    body.update(changes)
    return body


def claim(patient: str = "Patient/1", total: float = 125.5) -> dict:
    return {
        "resourceType": "Claim",
        "status": "active",
        "type": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/claim-type",
                    "code": "professional",
                }
            ]
        },
        "use": "claim",
        "patient": {"reference": patient},
        "billablePeriod": {"start": "2021-03-04T10:00:00Z", "end": "2021-03-04T11:00:00Z"},
        "created": "2021-03-04T11:00:00Z",
        "provider": {"reference": "Organization/does-not-exist"},
        "priority": {"coding": [{"code": "normal"}]},
        "insurance": [{"sequence": 1, "focal": True, "coverage": {"display": "Medicare"}}],
        "total": {"value": total, "currency": "USD"},
    }


ALLERGY = {
    "resourceType": "AllergyIntolerance",
    "clinicalStatus": {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                "code": "active",
            }
        ]
    },
    "type": "allergy",
    "category": ["food"],
    "criticality": "low",
    "code": {"coding": [{"system": "http://snomed.info/sct", "code": "91935009"}]},
    "patient": {"reference": "Patient/1"},
    "recordedDate": "2019-06-01",
    "reaction": [{"manifestation": [{"text": "Hives"}], "severity": "mild"}],
}


def ids(response) -> list[str]:
    assert response.status_code == 200, response.text
    return sorted(entry["resource"]["id"] for entry in response.json().get("entry", []))


def without_server_elements(resource: dict) -> dict:
    return {key: value for key, value in resource.items() if key not in ("id", "meta")}


@pytest.fixture
def patient(engine) -> int:
    return make_patient(engine)


# --- CRUD, history, conditional create ------------------------------------------------


def test_practitioner_round_trip_is_exact(client):
    created = client.post(f"{BASE}/Practitioner", json=PRACTITIONER)
    assert created.status_code == 201
    ident = created.json()["id"]
    assert created.headers["etag"] == 'W/"1"'
    read = client.get(f"{BASE}/Practitioner/{ident}").json()
    assert without_server_elements(read) == PRACTITIONER
    assert read["meta"]["versionId"] == "1"


def test_update_patch_history_vread_and_delete(client):
    ident = client.post(f"{BASE}/Practitioner", json=PRACTITIONER).json()["id"]
    changed = dict(PRACTITIONER, id=ident, gender="other")
    stale = client.put(f"{BASE}/Practitioner/{ident}", json=changed, headers={"If-Match": 'W/"9"'})
    assert stale.status_code == 412
    updated = client.put(
        f"{BASE}/Practitioner/{ident}", json=changed, headers={"If-Match": 'W/"1"'}
    )
    assert updated.status_code == 200
    assert updated.json()["meta"]["versionId"] == "2"
    patched = client.patch(
        f"{BASE}/Practitioner/{ident}",
        json=[{"op": "replace", "path": "/active", "value": False}],
        headers={"Content-Type": "application/json-patch+json"},
    )
    assert patched.status_code == 200
    assert patched.json()["active"] is False
    history = client.get(f"{BASE}/Practitioner/{ident}/_history").json()
    assert [entry["resource"]["meta"]["versionId"] for entry in history["entry"]] == ["3", "2", "1"]
    first = client.get(f"{BASE}/Practitioner/{ident}/_history/1").json()
    assert without_server_elements(first) == PRACTITIONER
    assert client.get(f"{BASE}/Practitioner?gender=other").json()["total"] == 1
    assert client.get(f"{BASE}/Practitioner?gender=female").json()["total"] == 0
    assert client.delete(f"{BASE}/Practitioner/{ident}").status_code in (200, 204)
    assert client.get(f"{BASE}/Practitioner/{ident}").status_code == 410
    assert client.get(f"{BASE}/Practitioner?gender=other").json()["total"] == 0


def test_conditional_create_finds_the_practitioner_by_identifier(client):
    condition = {"If-None-Exist": f"identifier={NPI}|9999912345"}
    first = client.post(f"{BASE}/Practitioner", json=PRACTITIONER, headers=condition)
    again = client.post(f"{BASE}/Practitioner", json=PRACTITIONER, headers=condition)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert client.get(f"{BASE}/Practitioner").json()["total"] == 1


def test_invalid_bodies_answer_400_and_store_nothing(client):
    wrong = dict(PRACTITIONER, gender=["female"])
    assert client.post(f"{BASE}/Practitioner", json=wrong).status_code == 400
    unknown = dict(PRACTITIONER, colour="blue")
    assert client.post(f"{BASE}/Practitioner", json=unknown).status_code == 400
    assert (
        client.post(f"{BASE}/Immunization", json={"resourceType": "Immunization"}).status_code
        == 400
    )
    assert client.get(f"{BASE}/Practitioner").json()["total"] == 0


def test_references_to_missing_resources_are_kept_as_sent(client):
    body = claim(patient="Patient/404")
    created = client.post(f"{BASE}/Claim", json=body)
    assert created.status_code == 201
    assert without_server_elements(created.json()) == body


# --- search ---------------------------------------------------------------------------


def test_practitioner_string_and_token_search(client):
    ident = client.post(f"{BASE}/Practitioner", json=PRACTITIONER).json()["id"]
    smith = dict(PRACTITIONER, name=[{"family": "Smith"}], telecom=[], address=[])
    client.post(f"{BASE}/Practitioner", json=smith)
    assert ids(client.get(f"{BASE}/Practitioner?family=muller")) == [ident]
    assert ids(client.get(f"{BASE}/Practitioner?name=ann")) == [ident]
    assert ids(client.get(f"{BASE}/Practitioner?family:exact=Müller")) == [ident]
    assert ids(client.get(f"{BASE}/Practitioner?family:exact=muller")) == []
    assert ids(client.get(f"{BASE}/Practitioner?address-city:contains=osto")) != []
    assert ids(client.get(f"{BASE}/Practitioner?identifier={NPI}|9999912345")) != []
    assert ids(client.get(f"{BASE}/Practitioner?identifier=other|9999912345")) == []
    assert ids(client.get(f"{BASE}/Practitioner?email=anna.muller@example.org")) == [ident]
    assert ids(client.get(f"{BASE}/Practitioner?_id={ident}")) == [ident]
    assert len(ids(client.get(f"{BASE}/Practitioner?family:missing=false"))) == 2


def test_immunization_token_reference_date_and_string_search(client, patient):
    first = client.post(f"{BASE}/Immunization", json=immunization()).json()["id"]
    later = immunization(occurrenceDateTime="2023-01-01", status="not-done")
    second = client.post(f"{BASE}/Immunization", json=later).json()["id"]
    search = f"{BASE}/Immunization?"
    assert ids(client.get(search + f"vaccine-code={CVX}|140")) == sorted([first, second])
    assert ids(client.get(search + "vaccine-code=|140")) == []
    assert ids(client.get(search + "status=completed")) == [first]
    assert ids(client.get(search + "status:not=completed")) == [second]
    assert ids(client.get(search + "patient=Patient/1")) == sorted([first, second])
    assert ids(client.get(search + "patient=1")) == sorted([first, second])
    assert ids(client.get(search + "patient:Patient=1")) == sorted([first, second])
    assert ids(client.get(search + "patient=Patient/2")) == []
    assert ids(client.get(search + "performer=Practitioner/999")) == sorted([first, second])
    assert ids(client.get(search + "date=2021-03-04")) == [first]
    assert ids(client.get(search + "date=ge2022")) == [second]
    assert ids(client.get(search + "date=lt2021-03-05")) == [first]
    assert ids(client.get(search + "date=2021-03-04&status=not-done")) == []
    assert ids(client.get(search + "lot-number=lot-4")) == sorted([first, second])
    assert ids(client.get(search + "_lastUpdated=ge2000-01-01")) == sorted([first, second])


def test_claim_quantity_and_date_search(client, patient):
    cheap = client.post(f"{BASE}/Claim", json=claim(total=10)).json()["id"]
    dear = client.post(f"{BASE}/Claim", json=claim(total=125.5)).json()["id"]
    search = f"{BASE}/Claim?"
    assert ids(client.get(search + "created=2021-03-04")) == sorted([cheap, dear])
    assert ids(client.get(search + "use=claim&priority=normal")) == sorted([cheap, dear])
    assert ids(client.get(search + "provider=Organization/does-not-exist")) == sorted([cheap, dear])
    assert ids(client.get(search + "patient=Patient/1")) == sorted([cheap, dear])


def test_quantity_search_with_prefixes_and_units(client, patient):
    charge = {
        "resourceType": "ChargeItem",
        "status": "billed",
        "code": {"text": "Vaccination"},
        "subject": {"reference": "Patient/1"},
        "quantity": {"value": 2, "unit": "dose", "system": UCUM, "code": "{dose}"},
    }
    charged = client.post(f"{BASE}/ChargeItem", json=charge).json()["id"]
    search = f"{BASE}/ChargeItem?quantity="
    assert ids(client.get(search + "2")) == [charged]
    assert ids(client.get(search + "gt2")) == []
    assert ids(client.get(search + "le2.5")) == [charged]
    assert ids(client.get(search + f"ge2|{UCUM}|{{dose}}")) == [charged]
    assert ids(client.get(search + f"2|{UCUM}|mg")) == []
    assert client.get(search + "two").status_code == 400


def test_allergy_search_and_unsupported_parameters(client, patient):
    ident = client.post(f"{BASE}/AllergyIntolerance", json=ALLERGY).json()["id"]
    search = f"{BASE}/AllergyIntolerance?"
    assert ids(client.get(search + "clinical-status=active&criticality=low")) == [ident]
    assert ids(client.get(search + "code=http://snomed.info/sct|91935009")) == [ident]
    assert ids(client.get(search + "category=food&type=allergy")) == [ident]
    assert ids(client.get(search + "date=2019-06")) == [ident]
    assert ids(client.get(search + "date=gt2019-06")) == []
    assert ids(client.get(search + "severity=mild")) == [ident]
    assert client.get(search + "colour=blue").status_code == 400
    assert client.get(f"{BASE}/Observation?code-value-quantity=x").status_code == 400


# --- Bundles, compartments, patient delete ---------------------------------------------


def test_transaction_with_urn_uuid_references(client):
    patient = "urn:uuid:11111111-1111-1111-1111-111111111111"
    practitioner = "urn:uuid:22222222-2222-2222-2222-222222222222"
    vaccine = immunization(patient)
    vaccine["performer"] = [{"actor": {"reference": practitioner}}]
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": patient,
                "resource": {
                    "resourceType": "Patient",
                    "identifier": [{"system": "HIS", "value": "IPP-T1"}],
                    "name": [{"family": "Doe", "given": ["Jane"]}],
                    "gender": "female",
                    "birthDate": "1990-02-03",
                },
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "fullUrl": practitioner,
                "resource": PRACTITIONER,
                "request": {
                    "method": "POST",
                    "url": "Practitioner",
                    "ifNoneExist": f"identifier={NPI}|9999912345",
                },
            },
            {"resource": vaccine, "request": {"method": "POST", "url": "Immunization"}},
            {"resource": claim(patient), "request": {"method": "POST", "url": "Claim"}},
        ],
    }
    response = client.post(BASE, json=bundle)
    assert response.status_code == 200, response.text
    statuses = [entry["response"]["status"] for entry in response.json()["entry"]]
    assert all(status.startswith("201") for status in statuses)
    patient_id = client.get(f"{BASE}/Patient").json()["entry"][0]["resource"]["id"]
    practitioner_id = client.get(f"{BASE}/Practitioner").json()["entry"][0]["resource"]["id"]
    stored = client.get(f"{BASE}/Immunization?patient=Patient/{patient_id}").json()["entry"]
    assert stored[0]["resource"]["performer"][0]["actor"] == {
        "reference": f"Practitioner/{practitioner_id}"
    }
    assert ids(client.get(f"{BASE}/Patient/{patient_id}/Claim")) != []
    again = client.post(BASE, json=dict(copy.deepcopy(bundle), entry=bundle["entry"][1:2]))
    assert again.status_code == 200
    assert again.json()["entry"][0]["response"]["status"].startswith("200")
    assert client.get(f"{BASE}/Practitioner").json()["total"] == 1


def test_compartment_everything_and_patient_delete(client, engine, patient):
    other = make_patient(engine, lastname="Other")
    mine = client.post(f"{BASE}/Immunization", json=immunization()).json()["id"]
    client.post(f"{BASE}/Immunization", json=immunization(f"Patient/{other}"))
    client.post(f"{BASE}/Practitioner", json=PRACTITIONER)
    assert ids(client.get(f"{BASE}/Patient/{patient}/Immunization")) == [mine]
    everything = client.get(f"{BASE}/Patient/{patient}/$everything").json()
    found = {
        (entry["resource"]["resourceType"], entry["resource"]["id"])
        for entry in everything["entry"]
    }
    assert ("Immunization", mine) in found
    assert not any(kind == "Practitioner" for kind, _ in found)
    blocked = client.delete(f"{BASE}/Patient/{patient}")
    assert blocked.status_code == 409
    assert "Immunization" in blocked.json()["issue"][0]["diagnostics"]
    assert client.delete(f"{BASE}/Immunization/{mine}").status_code in (200, 204)
    assert client.delete(f"{BASE}/Patient/{patient}").status_code in (200, 204)


def test_a_patient_scoped_token_sees_only_its_patient(make_client, engine):
    first, second = make_patient(engine), make_patient(engine, lastname="Other")
    secured = make_client(**AUTH_ENV)
    admin = bearer(hs256("system/*.*", sub="loader"))
    for number in (first, second):
        body = immunization(f"Patient/{number}")
        assert secured.post(f"{BASE}/Immunization", json=body, headers=admin).status_code == 201
    secured.post(f"{BASE}/Practitioner", json=PRACTITIONER, headers=admin)
    token = bearer(hs256("patient/*.read", patient=str(first)))
    found = secured.get(f"{BASE}/Immunization", headers=token).json()["entry"]
    assert [entry["resource"]["patient"]["reference"] for entry in found] == [f"Patient/{first}"]
    assert secured.get(f"{BASE}/Practitioner", headers=token).json()["total"] == 1


def test_capability_statement_lists_stored_types_and_parameters(client):
    statement = client.get(f"{BASE}/metadata").json()
    resources = {entry["type"]: entry for entry in statement["rest"][0]["resource"]}
    for name in ("Practitioner", "Immunization", "Claim", "Provenance", "ImagingStudy"):
        assert name in resources
    params = {param["name"]: param["type"] for param in resources["Immunization"]["searchParam"]}
    assert params["vaccine-code"] == "token"
    assert params["date"] == "date"
    assert "Parameters" not in resources and "OperationOutcome" not in resources


def test_lower_case_paths_validate_and_types_not_stored(client):
    created = client.post(f"{BASE}/practitioner/", json=PRACTITIONER)
    assert created.status_code == 201
    assert client.get(f"{BASE}/practitioner/{created.json()['id']}/").status_code == 200
    valid = client.post(f"{BASE}/Immunization/$validate", json=immunization())
    assert valid.status_code == 200
    invalid = client.post(f"{BASE}/Immunization/$validate", json={"resourceType": "Immunization"})
    assert invalid.json()["issue"][0]["severity"] == "error"
    parameters = {"resourceType": "Parameters", "parameter": [{"name": "a", "valueString": "b"}]}
    assert client.post(f"{BASE}/Parameters", json=parameters).status_code == 404


def test_a_referenced_stored_resource_cannot_be_deleted(client, patient):
    practitioner = client.post(f"{BASE}/Practitioner", json=PRACTITIONER).json()["id"]
    body = immunization(performer=[{"actor": {"reference": f"Practitioner/{practitioner}"}}])
    vaccine = client.post(f"{BASE}/Immunization", json=body).json()["id"]
    blocked = client.delete(f"{BASE}/Practitioner/{practitioner}")
    assert blocked.status_code == 409
    assert "1 Immunization" in blocked.json()["issue"][0]["diagnostics"]
    assert client.delete(f"{BASE}/Immunization/{vaccine}").status_code in (200, 204)
    assert client.delete(f"{BASE}/Practitioner/{practitioner}").status_code in (200, 204)


def test_includes_and_chains_on_stored_references_answer_400(client):
    assert client.get(f"{BASE}/Immunization?_include=Immunization:patient").status_code == 400
    assert client.get(f"{BASE}/Immunization?patient.family=Smith").status_code == 400
    assert client.get(f"{BASE}/Immunization?_sort=date").status_code == 400


def test_conditional_references_in_a_transaction_name_the_one_match(client, patient):
    practitioner = client.post(f"{BASE}/Practitioner", json=PRACTITIONER).json()["id"]
    found = f"Practitioner?identifier={NPI}|9999912345"
    missing = f"Practitioner?identifier={NPI}|0000000000"
    first = immunization(performer=[{"actor": {"reference": found}}])
    second = immunization(performer=[{"actor": {"reference": missing}}])
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": body, "request": {"method": "POST", "url": "Immunization"}}
            for body in (first, second)
        ],
    }
    response = client.post(BASE, json=bundle)
    assert response.status_code == 200, response.text
    stored = [
        client.get(f"{BASE}/{entry['response']['location'].split('/_history')[0]}").json()
        for entry in response.json()["entry"]
    ]
    actors = [resource["performer"][0]["actor"]["reference"] for resource in stored]
    assert actors == [f"Practitioner/{practitioner}", missing]


def _local(value, assigned: dict[str, str]):
    """`value` with the bundle's fullUrls replaced by what the server assigned."""
    if isinstance(value, dict):
        return {
            key: assigned.get(item, item) if key == "reference" else _local(item, assigned)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_local(item, assigned) for item in value]
    return value


def test_a_synthea_like_transaction_loads_every_entry_unchanged(client):
    bundle = synthea_like.bundle()
    response = client.post(BASE, json=bundle)
    assert response.status_code == 200, response.text
    answered = response.json()["entry"]
    assert [entry["response"]["status"][:3] for entry in answered] == ["201"] * len(answered)
    locations = [entry["response"]["location"].split("/_history")[0] for entry in answered]
    assigned = {
        entry["fullUrl"]: location
        for entry, location in zip(bundle["entry"], locations, strict=True)
    }
    for entry, location in zip(bundle["entry"][1:], locations[1:], strict=True):
        stored = client.get(f"{BASE}/{location}").json()
        assert without_server_elements(stored) == _local(entry["resource"], assigned), location
    patient_id = locations[0].split("/")[1]
    everything = client.get(f"{BASE}/Patient/{patient_id}/$everything?_count=100").json()
    types = {entry["resource"]["resourceType"] for entry in everything["entry"]}
    compartment = {
        "Immunization",
        "AllergyIntolerance",
        "CareTeam",
        "CarePlan",
        "Goal",
        "ImagingStudy",
        "SupplyDelivery",
        "Claim",
        "ExplanationOfBenefit",
        "Provenance",
        "MedicationAdministration",
        "Patient",
    }
    assert types == compartment  # R4B puts no Device in the Patient compartment
    search = f"{BASE}/ExplanationOfBenefit?patient=Patient/{patient_id}&created=2015-06-01"
    assert len(ids(client.get(search))) == 1
    assert len(ids(client.get(f"{BASE}/Provenance?patient=Patient/{patient_id}"))) == 1
    assert len(ids(client.get(f"{BASE}/CarePlan?subject=Patient/{patient_id}&status=active"))) == 1
    assert len(ids(client.get(f"{BASE}/Location?address-city=leominster"))) == 1
