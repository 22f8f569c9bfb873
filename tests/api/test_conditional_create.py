"""Conditional create: If-None-Exist, the query string of a POST, request.ifNoneExist."""

from __future__ import annotations

import pytest

from codoc_fhir.warehouse.schema import dwh_patient, dwh_patient_stay
from tests.factories import count_rows

BASE = "/v4.3.0"


def patient(ipp: str, family: str = "Martin") -> dict:
    return {
        "resourceType": "Patient",
        "identifier": [{"use": "usual", "system": "HIS", "value": ipp}],
        "name": [{"family": family, "given": ["Paul"]}],
        "gender": "male",
        "birthDate": "1970-02-03",
    }


def by_header(client, body, condition):
    return client.post(f"{BASE}/Patient", json=body, headers={"If-None-Exist": condition})


def by_query(client, body, condition):
    return client.post(f"{BASE}/Patient?{condition}", json=body)


@pytest.mark.parametrize("send", [by_header, by_query])
def test_no_match_creates_one_match_answers_it(client, engine, send):
    first = send(client, patient("IPP1"), "identifier=HIS|IPP1")
    assert first.status_code == 201
    assert first.headers["location"].endswith("/Patient/1")
    again = send(client, patient("IPP1", family="Other"), "identifier=HIS|IPP1")
    assert again.status_code == 200
    assert again.json()["id"] == "1"
    assert again.json()["name"][0]["family"] == "Martin"  # nothing written
    assert again.json()["meta"]["versionId"] == "1"
    assert count_rows(engine, dwh_patient) == 1


@pytest.mark.parametrize("send", [by_header, by_query])
def test_several_matches_is_412_and_nothing_stored(client, engine, send):
    client.post(f"{BASE}/Patient", json=patient("IPP1", family="Durand"))
    client.post(f"{BASE}/Patient", json=patient("IPP2", family="Durand"))
    response = send(client, patient("IPP3"), "family=Durand")
    assert response.status_code == 412
    assert response.json()["issue"][0]["code"] == "duplicate"
    assert count_rows(engine, dwh_patient) == 2


@pytest.mark.parametrize("condition", ["unknown=1", "_count=1", "", "identifier="])
def test_bad_conditions_are_400(client, engine, condition):
    response = by_header(client, patient("IPP1"), condition or " ")
    if condition == "":
        assert response.status_code == 201  # a blank header is no condition
        return
    assert response.status_code == 400
    assert count_rows(engine, dwh_patient) == 0


def test_format_in_the_query_is_no_condition(client, engine):
    assert client.post(f"{BASE}/Patient?_format=json", json=patient("IPP1")).status_code == 201
    assert client.post(f"{BASE}/Patient?_format=json", json=patient("IPP2")).status_code == 201
    assert count_rows(engine, dwh_patient) == 2


def test_condition_on_a_codoc_sub_path_searches_that_kind(client, engine):
    client.post(f"{BASE}/Patient", json=patient("IPP1"))
    stay = {
        "resourceType": "Encounter",
        "identifier": [{"use": "usual", "value": "ADM001"}],
        "status": "in-progress",
        "class": {"code": "IMP"},
        "subject": {"reference": "Patient/1"},
        "period": {"start": "2024-01-15T08:00:00Z"},
    }
    headers = {"If-None-Exist": "identifier=ADM001"}
    assert client.post(f"{BASE}/encounter/stay/", json=stay, headers=headers).status_code == 201
    again = client.post(f"{BASE}/Encounter", json=stay, headers=headers)
    assert again.status_code == 200
    assert again.json()["id"] == "1"
    assert count_rows(engine, dwh_patient_stay) == 1


def test_if_none_exist_in_transaction_entries(client, engine):
    client.post(f"{BASE}/Patient", json=patient("IPP1"))
    pat = "urn:uuid:7a1e0000-0000-4000-8000-000000000001"
    procedure = {
        "resourceType": "Procedure",
        "status": "completed",
        "code": {"coding": [{"code": "COLO001"}]},
        "subject": {"reference": pat},
        "performedDateTime": "2024-01-15T14:00:00Z",
    }
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": pat,
                "resource": patient("IPP1", family="Ignored"),
                "request": {
                    "method": "POST",
                    "url": "Patient",
                    "ifNoneExist": "identifier=HIS|IPP1",
                },
            },
            {"resource": procedure, "request": {"method": "POST", "url": "Procedure"}},
            {
                "resource": patient("IPP9"),
                "request": {"method": "POST", "url": "Patient", "ifNoneExist": "identifier=IPP9"},
            },
        ],
    }
    response = client.post(f"{BASE}/", json=bundle)
    assert response.status_code == 200, response.text
    entries = response.json()["entry"]
    assert entries[0]["response"]["status"] == "200 OK"
    assert entries[0]["response"]["location"] == "Patient/1"
    assert entries[1]["resource"]["subject"]["reference"] == "Patient/1"
    assert entries[2]["response"]["status"] == "201 Created"
    assert count_rows(engine, dwh_patient) == 2
    # loading the same Bundle again changes nothing but the procedure
    again = client.post(f"{BASE}/", json=bundle).json()["entry"]
    assert [entry["response"]["status"] for entry in again] == ["200 OK", "201 Created", "200 OK"]
    assert count_rows(engine, dwh_patient) == 2


def test_duplicate_match_in_a_transaction_fails_it(client, engine):
    client.post(f"{BASE}/Patient", json=patient("IPP1", family="Durand"))
    client.post(f"{BASE}/Patient", json=patient("IPP2", family="Durand"))
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": patient("IPP5"), "request": {"method": "POST", "url": "Patient"}},
            {
                "resource": patient("IPP6"),
                "request": {"method": "POST", "url": "Patient", "ifNoneExist": "family=Durand"},
            },
        ],
    }
    response = client.post(f"{BASE}", json=bundle)
    assert response.status_code == 412
    assert response.json()["issue"][0]["code"] == "duplicate"
    assert count_rows(engine, dwh_patient) == 2
