"""Transaction and batch Bundles posted to the base URL (CONTRACT section 6)."""

from __future__ import annotations

import base64
import json

import pytest

from codoc_fhir.warehouse.schema import (
    dwh_data,
    dwh_patient,
    dwh_patient_stay,
    dwh_thesaurus_department,
    dwh_thesaurus_site,
)
from tests.factories import count_rows, make_patient

BASE = "/v4.3.0"
SITE = "urn:uuid:5a1e0000-0000-4000-8000-000000000001"
DEPT = "urn:uuid:5a1e0000-0000-4000-8000-000000000002"
PAT = "urn:uuid:5a1e0000-0000-4000-8000-000000000003"
STAY = "urn:uuid:5a1e0000-0000-4000-8000-000000000004"
PROC = "urn:uuid:5a1e0000-0000-4000-8000-000000000005"


def post_entry(full_url: str | None, resource: dict, **request) -> dict:
    entry = {"resource": resource, "request": {"method": "POST", "url": resource["resourceType"]}}
    entry["request"].update(request)
    if full_url:
        entry["fullUrl"] = full_url
    return entry


def patient(ipp: str = "IPP1", organization: str | None = None) -> dict:
    body = {
        "resourceType": "Patient",
        "identifier": [{"use": "usual", "system": "HIS", "value": ipp}],
        "name": [{"family": "Martin", "given": ["Paul"]}],
        "gender": "male",
        "birthDate": "1970-02-03",
    }
    if organization:
        body["managingOrganization"] = {"reference": organization}
    return body


def procedure(subject: str, encounter: str | None = None) -> dict:
    body = {
        "resourceType": "Procedure",
        "status": "completed",
        "code": {"coding": [{"code": "COLO001", "display": "Colonoscopy"}]},
        "subject": {"reference": subject},
        "performedDateTime": "2024-01-15T14:00:00Z",
    }
    if encounter:
        body["encounter"] = {"reference": encounter}
    return body


def hospital_bundle() -> dict:
    """Site, department, patient, stay and procedure, linked by urn:uuid, sent backwards."""
    site = {
        "resourceType": "Organization",
        "identifier": [{"use": "usual", "value": "HOSP001"}],
        "name": "Paris University Hospital",
        "type": [{"coding": [{"code": "prov"}]}],
    }
    dept = {
        "resourceType": "Organization",
        "identifier": [{"use": "usual", "value": "CARD001"}],
        "name": "Cardiology Department",
        "type": [{"coding": [{"code": "dept"}]}],
        "partOf": {"reference": SITE},
    }
    stay = {
        "resourceType": "Encounter",
        "identifier": [{"use": "usual", "value": "ADM001"}],
        "status": "in-progress",
        "class": {"code": "IMP"},
        "subject": {"reference": PAT},
        "serviceProvider": {"reference": DEPT},
        "period": {"start": "2024-01-15T08:00:00Z"},
    }
    entries = [
        post_entry(PROC, procedure(PAT, STAY)),
        post_entry(STAY, stay),
        post_entry(PAT, patient("IPP1", DEPT)),
        post_entry(DEPT, dept),
        post_entry(SITE, site),
    ]
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


@pytest.mark.parametrize("path", [f"{BASE}/", BASE])
def test_transaction_resolves_urn_uuid_references(client, engine, path):
    response = client.post(path, json=hospital_bundle())
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["type"] == "transaction-response"
    statuses = [entry["response"]["status"] for entry in answer["entry"]]
    assert statuses == ["201 Created"] * 5
    locations = [entry["response"]["location"] for entry in answer["entry"]]
    assert locations == [
        "Procedure/1",
        "Encounter/1",
        "Patient/1",
        "Organization/department-1",
        "Organization/site-1",
    ]
    first = answer["entry"][0]
    assert first["response"]["etag"] == 'W/"1"'
    assert first["response"]["lastModified"] == first["resource"]["meta"]["lastUpdated"]
    assert first["fullUrl"] == "http://testserver/v4.3.0/Procedure/1"

    stored = client.get(f"{BASE}/Procedure/1").json()
    assert stored["subject"]["reference"] == "Patient/1"
    assert stored["encounter"]["reference"] == "Encounter/1"
    assert client.get(f"{BASE}/Encounter/1").json()["serviceProvider"]["reference"] == (
        "Organization/department-1"
    )
    assert client.get(f"{BASE}/Patient/1").json()["managingOrganization"]["reference"] == (
        "Organization/department-1"
    )
    assert count_rows(engine, dwh_data) == 1


def test_failing_entry_rolls_back_the_whole_transaction(client, engine):
    bundle = hospital_bundle()
    bundle["entry"][0]["resource"]["status"] = "not-a-status"
    bundle["entry"][0]["resource"]["subject"] = {"reference": "Patient/999"}
    response = client.post(f"{BASE}/", json=bundle)
    assert response.status_code == 400
    issue = response.json()["issue"][0]
    assert issue["diagnostics"].startswith("Bundle.entry[0] (POST Procedure)")
    for table in (dwh_thesaurus_site, dwh_thesaurus_department, dwh_patient, dwh_patient_stay):
        assert count_rows(engine, table) == 0
    assert count_rows(engine, dwh_data) == 0


def test_reference_to_missing_resource_fails_the_transaction(client, engine):
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [post_entry(PAT, patient()), post_entry(None, procedure("Patient/42"))],
    }
    response = client.post(f"{BASE}/", json=bundle)
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"][0].startswith("Bundle.entry[1]")
    assert count_rows(engine, dwh_patient) == 0


def test_batch_keeps_good_entries_and_reports_the_bad_one(client, engine):
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            post_entry(None, patient("IPP1")),
            post_entry(None, procedure("Patient/77")),
            post_entry(None, {"resourceType": "Patient", "gender": "robot"}),
            post_entry(None, patient("IPP2")),
        ],
    }
    response = client.post(f"{BASE}/", json=bundle)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["type"] == "batch-response"
    entries = answer["entry"]
    assert entries[0]["response"]["status"] == "201 Created"
    assert entries[1]["response"]["status"] == "400 Bad Request"
    assert entries[1]["response"]["outcome"]["resourceType"] == "OperationOutcome"
    assert entries[2]["response"]["status"] == "400 Bad Request"
    assert entries[3]["response"]["location"] == "Patient/2"
    assert count_rows(engine, dwh_patient) == 2
    assert count_rows(engine, dwh_data) == 0


def test_delete_put_patch_and_get_entries(client, engine):
    for ipp in ("IPP1", "IPP2", "IPP3"):
        client.post(f"{BASE}/Patient", json=patient(ipp))
    client.post(f"{BASE}/Procedure", json=procedure("Patient/1"))
    read = client.get(f"{BASE}/Patient/2").json()
    read["gender"] = "female"
    patch = [{"op": "replace", "path": "/birthDate", "value": "1971-01-01"}]
    binary = {
        "resourceType": "Binary",
        "contentType": "application/json-patch+json",
        "data": base64.b64encode(json.dumps(patch).encode()).decode(),
    }
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"request": {"method": "GET", "url": "Procedure?subject=Patient/1"}},
            {"request": {"method": "GET", "url": "patient/2"}},
            {
                "resource": read,
                "request": {"method": "PUT", "url": "Patient/2", "ifMatch": 'W/"1"'},
            },
            {"resource": binary, "request": {"method": "PATCH", "url": "Patient/1"}},
            {"request": {"method": "DELETE", "url": "Patient/3"}},
        ],
    }
    response = client.post(f"{BASE}/", json=bundle)
    assert response.status_code == 200, response.text
    entries = response.json()["entry"]
    assert [entry["response"]["status"] for entry in entries] == [
        "200 OK",
        "200 OK",
        "200 OK",
        "200 OK",
        "204 No Content",
    ]
    searchset = entries[0]["resource"]
    assert searchset["type"] == "searchset"
    assert [item["resource"]["id"] for item in searchset["entry"]] == ["1"]
    # GET runs after PUT: it sees the new version
    assert entries[1]["resource"]["gender"] == "female"
    assert entries[1]["response"]["etag"] == 'W/"2"'
    assert entries[3]["resource"]["birthDate"] == "1971-01-01"
    assert client.get(f"{BASE}/Patient/3").status_code == 410  # deleted by the transaction
    assert count_rows(engine, dwh_patient) == 2


def test_put_entry_with_stale_if_match_rolls_back_the_delete(client, engine):
    client.post(f"{BASE}/Patient", json=patient("IPP1"))
    client.post(f"{BASE}/Patient", json=patient("IPP2"))
    body = dict(patient("IPP1"), id="1")
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"request": {"method": "DELETE", "url": "Patient/2"}},
            {
                "resource": body,
                "request": {"method": "PUT", "url": "Patient/1", "ifMatch": 'W/"9"'},
            },
        ],
    }
    response = client.post(f"{BASE}", json=bundle)
    assert response.status_code == 412
    assert count_rows(engine, dwh_patient) == 2


def test_movement_sub_path_and_lower_case_urls(client, engine):
    make_patient(engine)
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"request": {"method": "GET", "url": "encounter/movement/3"}},
            {"request": {"method": "GET", "url": "patient/1"}},
            {"request": {"method": "GET", "url": "/Patient?identifier=nothing"}},
            {"request": {"method": "GET", "url": "Condition/1"}},
        ],
    }
    entries = client.post(f"{BASE}/", json=bundle).json()["entry"]
    assert entries[0]["response"]["status"] == "404 Not Found"
    assert entries[1]["resource"]["id"] == "1"
    assert entries[2]["resource"]["total"] == 0
    assert entries[3]["response"]["status"] == "404 Not Found"


def test_prefer_return_minimal_leaves_resources_out(client):
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [post_entry(None, patient())]}
    response = client.post(f"{BASE}/", json=bundle, headers={"Prefer": "return=minimal"})
    entry = response.json()["entry"][0]
    assert "resource" not in entry
    assert entry["response"]["location"] == "Patient/1"


@pytest.mark.parametrize(
    "body",
    [
        {"resourceType": "Bundle", "type": "collection", "entry": []},
        {"resourceType": "Bundle", "type": "searchset"},
        {"resourceType": "Patient"},
        {"resourceType": "Bundle", "type": "batch", "entry": [{"resource": patient()}]},
        {"resourceType": "Bundle", "type": "transaction", "entry": "nope"},
        [1, 2],
    ],
)
def test_bad_bundles_are_400(client, engine, body):
    response = client.post(f"{BASE}/", json=body)
    assert response.status_code == 400
    assert response.json()["resourceType"] == "OperationOutcome"
    assert count_rows(engine, dwh_patient) == 0


def test_invalid_resource_in_a_transaction_is_400_before_anything_runs(client, engine):
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [post_entry(None, patient()), post_entry(None, dict(patient(), gender=3))],
    }
    assert client.post(f"{BASE}/", json=bundle).status_code == 400
    assert count_rows(engine, dwh_patient) == 0


def assert_refused_at(client, engine, kind: str, entries: list, expression: str) -> None:
    """The Bundle is a 400 whose expression starts with `expression`, and stores nothing."""
    bundle = {"resourceType": "Bundle", "type": kind, "entry": entries}
    response = client.post(f"{BASE}/", json=bundle)
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"][0].startswith(expression)
    assert count_rows(engine, dwh_patient) == 0


@pytest.mark.parametrize(
    "broken",
    [
        {"method": "POST", "url": 5},
        {"method": "POST", "url": "Procedure", "ifNoneExist": ["x"]},
        {"method": "POST", "url": "Procedure", "unknown": "x"},
    ],
)
def test_a_bad_request_among_identical_ones_is_named_by_its_entry(client, engine, broken):
    entries = [post_entry(PAT, patient())]
    entries += [post_entry(None, procedure(PAT)) for _ in range(40)]
    entries[29] = dict(entries[29], request=broken)
    assert_refused_at(client, engine, "transaction", entries, "Bundle.entry[29].request")


def test_a_bad_full_url_is_named_by_its_entry(client, engine):
    entries = [
        post_entry(f"urn:uuid:5a1e0000-0000-4000-8000-{n:012d}", patient(f"I{n}")) for n in range(6)
    ]
    entries[4]["fullUrl"] = {"not": "a uri"}
    assert_refused_at(client, engine, "batch", entries, "Bundle.entry[4].fullUrl")


def test_circular_references_are_400(client, engine):
    a = "urn:uuid:00000000-0000-4000-8000-00000000000a"
    b = "urn:uuid:00000000-0000-4000-8000-00000000000b"
    one = dict(patient("IPP1"), link=[{"other": {"reference": b}, "type": "seealso"}])
    two = dict(patient("IPP2"), link=[{"other": {"reference": a}, "type": "seealso"}])
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [post_entry(a, one), post_entry(b, two)],
    }
    response = client.post(f"{BASE}/", json=bundle)
    assert response.status_code == 400
    assert "circle" in response.json()["issue"][0]["diagnostics"]


def test_transaction_body_limit_is_its_own(make_client):
    client = make_client(CODOC_MAX_BODY_BYTES="2000", CODOC_MAX_TRANSACTION_BYTES="50000")
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [post_entry(None, patient(f"IPP{n}")) for n in range(12)],
    }
    assert len(json.dumps(bundle)) > 2000
    assert client.post(f"{BASE}/", json=bundle).status_code == 200
    assert (
        client.post(
            f"{BASE}/Patient",
            json=dict(
                patient(),
                text={
                    "status": "generated",
                    "div": '<div xmlns="http://www.w3.org/1999/xhtml">' + "x" * 3000 + "</div>",
                },
            ),
        ).status_code
        == 413
    )
    huge = {"resourceType": "Bundle", "type": "batch", "entry": bundle["entry"] * 40}
    assert client.post(f"{BASE}/", json=huge).status_code == 413


def test_capability_statement_lists_transaction_and_batch(client):
    rest = client.get(f"{BASE}/metadata").json()["rest"][0]
    assert {"code": "transaction"} in rest["interaction"]
    assert {"code": "batch"} in rest["interaction"]


def test_entries_are_authorized_one_by_one(make_client, engine):
    from tests.factories import seed_procedure_context
    from tests.security.tokens import AUTH_ENV, bearer, hs256

    seed_procedure_context(engine)  # Patient/1
    make_patient(engine, lastname="Other", firstname="Bob")  # Patient/2
    client = make_client(**AUTH_ENV)
    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"request": {"method": "GET", "url": "Patient/1"}},
            {"request": {"method": "GET", "url": "Patient/2"}},
            post_entry(None, procedure("Patient/1")),
            post_entry(None, procedure("Patient/2")),
        ],
    }
    assert client.post(f"{BASE}/", json=batch).status_code == 401
    own = bearer(hs256("patient/*.read patient/Procedure.write", patient="1"))
    statuses = [
        entry["response"]["status"]
        for entry in client.post(f"{BASE}/", json=batch, headers=own).json()["entry"]
    ]
    assert statuses == ["200 OK", "404 Not Found", "201 Created", "403 Forbidden"]
    reader = bearer(hs256("system/Patient.read"))
    entries = client.post(f"{BASE}/", json=batch, headers=reader).json()["entry"]
    assert entries[2]["response"]["status"] == "403 Forbidden"
    transaction = dict(batch, type="transaction")
    # POSTs run before GETs: the other patient's Procedure fails the transaction first
    assert client.post(f"{BASE}/", json=transaction, headers=own).status_code == 403
    assert count_rows(engine, dwh_data) == 1  # only the batch's own Procedure
