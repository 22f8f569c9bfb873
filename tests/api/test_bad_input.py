"""Bad input is a 4xx with an OperationOutcome, never a 500, and leaves nothing behind
(CONTRACT section 8): malformed Bundle entries, wrong JSON types, a PATCH breaking a rule."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.clients.payloads import patient_body
from tests.factories import seed_procedure_context, table_rows

BASE = "/v4.3.0"
PROCEDURE = {
    "resourceType": "Procedure",
    "status": "completed",
    "code": {"coding": [{"code": "COLO001", "display": "Colonoscopy"}]},
    "subject": {"reference": "Patient/1"},
    "performedDateTime": "2024-01-15T14:00:00Z",
}
OBSERVATION = {
    "resourceType": "Observation",
    "status": "final",
    "code": {"coding": [{"code": "GLU"}]},
    "subject": {"reference": "Patient/1"},
    "effectiveDateTime": "2024-01-21T07:00:00Z",
    "valueQuantity": {"value": 95, "unit": "mg/dL"},
}
DOCUMENT = {
    "resourceType": "DocumentReference",
    "status": "current",
    "subject": {"reference": "Patient/1"},
    "date": "2024-01-15T10:00:00Z",
    "content": [{"attachment": {"contentType": "text/html", "data": "PHA+Tm90ZTwvcD4="}}],
}


@pytest.fixture
def context(client, engine):
    seed_procedure_context(engine)
    return client


def patient() -> dict[str, Any]:
    return {"resourceType": "Patient", **patient_body("IPP-BAD-1")}


def bundle(kind: str, *entries: Any) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def post(resource: Any, url: str = "Patient", method: str = "POST") -> dict[str, Any]:
    return {"resource": resource, "request": {"method": method, "url": url}}


def assert_outcome(response, status: int = 400) -> dict[str, Any]:
    assert response.status_code == status, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["severity"] == "error"
    return outcome


def assert_entry_refused(entry: dict[str, Any], status: str = "400") -> None:
    assert entry["response"]["status"].startswith(status), entry
    assert entry["response"]["outcome"]["resourceType"] == "OperationOutcome"


def with_resource_type(value: Any) -> dict[str, Any]:
    body = patient()
    if value is None:
        del body["resourceType"]
    else:
        body["resourceType"] = value
    return body


@pytest.mark.parametrize("resource_type", ["Foo", "", "patient", None, 1, ["Patient"]])
@pytest.mark.parametrize("method,url", [("POST", "Patient"), ("PUT", "Patient/1")])
def test_entry_with_a_bad_resource_type_is_400(context, engine, resource_type, method, url):
    if method == "PUT":
        assert context.post(f"{BASE}/Patient", json=patient()).status_code == 201
    before = table_rows(engine)
    entry = post(with_resource_type(resource_type), url, method)
    assert_outcome(context.post(f"{BASE}/", json=bundle("transaction", entry)))
    assert table_rows(engine) == before
    answer = context.post(f"{BASE}/", json=bundle("batch", entry))
    assert answer.status_code == 200
    assert_entry_refused(answer.json()["entry"][0])
    assert table_rows(engine) == before


BAD_BODIES = {
    "coding-not-an-array": OBSERVATION | {"category": [{"coding": 1}]},
    "category-not-an-array": OBSERVATION | {"category": {"coding": []}},
    "content-a-number": DOCUMENT | {"content": 1},
    "attachment-a-string": DOCUMENT | {"content": [{"attachment": "x"}]},
    "code-an-array": PROCEDURE | {"code": [PROCEDURE["code"]]},
    "subject-a-string": PROCEDURE | {"subject": "Patient/1"},
    "deceased-yes": patient() | {"deceasedBoolean": "yes"},
    "deceased-one": patient() | {"deceasedBoolean": 1},
    "family-a-number": patient() | {"name": [{"family": 1}]},
    "given-not-strings": patient() | {"name": [{"family": "S", "given": [True]}]},
    "birth-date-a-number": patient() | {"birthDate": 19800515},
    "value-a-string": OBSERVATION | {"valueQuantity": {"value": "95", "unit": "mg/dL"}},
    "value-a-boolean": OBSERVATION | {"valueQuantity": {"value": True, "unit": "mg/dL"}},
    "identifier-value-a-number": patient() | {"identifier": [{"use": "usual", "value": 12}]},
    "nested-garbage": PROCEDURE | {"performer": [{"actor": {"reference": {"a": [1]}}}]},
    "contained-foo": PROCEDURE | {"contained": [{"resourceType": "Foo", "id": "x"}]},
}


@pytest.mark.parametrize("name", sorted(BAD_BODIES))
def test_wrong_json_types_are_400_everywhere(context, engine, name):
    body = BAD_BODIES[name]
    fhir_type = body["resourceType"]
    before = table_rows(engine)
    assert_outcome(context.post(f"{BASE}/{fhir_type}", json=body))
    assert_outcome(context.post(f"{BASE}/{fhir_type.lower()}/", json=body))
    assert_outcome(context.post(f"{BASE}/", json=bundle("transaction", post(body, fhir_type))))
    assert table_rows(engine) == before


@pytest.mark.parametrize("name", sorted(BAD_BODIES))
def test_one_bad_entry_does_not_kill_a_batch(context, engine, name):
    body = BAD_BODIES[name]
    assert context.post(f"{BASE}/Procedure", json=PROCEDURE).status_code == 201  # its code
    codes_per_procedure = table_rows(engine)["fhir_token"]  # its codes no column holds
    before = table_rows(engine)
    entries = (post(body, body["resourceType"]), post(PROCEDURE, "Procedure"))
    answer = context.post(f"{BASE}/", json=bundle("batch", *entries))
    assert answer.status_code == 200, answer.text
    refused, created = answer.json()["entry"]
    assert_entry_refused(refused)
    assert created["response"]["status"].startswith("201")
    created_rows = {  # the good entry's fact and its first version; nothing of the bad one
        "dwh_data": before["dwh_data"] + 1,
        "dwh_resource_history": before["dwh_resource_history"] + 1,
        "fhir_token": before["fhir_token"] + codes_per_procedure,
    }
    assert table_rows(engine) == before | created_rows


@pytest.mark.parametrize("name", sorted(BAD_BODIES))
def test_wrong_json_types_in_a_put_change_nothing(context, engine, name):
    body = BAD_BODIES[name]
    fhir_type = body["resourceType"]
    valid = {"Patient": patient(), "Procedure": PROCEDURE, "Observation": OBSERVATION}.get(
        fhir_type, DOCUMENT
    )
    created = context.post(f"{BASE}/{fhir_type}", json=valid)
    assert created.status_code == 201
    ident = created.json()["id"]
    before = table_rows(engine)
    assert_outcome(context.put(f"{BASE}/{fhir_type}/{ident}", json=body | {"id": ident}))
    assert context.get(f"{BASE}/{fhir_type}/{ident}").json()["meta"]["versionId"] == "1"
    assert table_rows(engine) == before


@pytest.mark.parametrize(
    "entry",
    [
        1,
        "entry",
        [1],
        {"request": 1},
        {"request": {"method": 1, "url": "Patient"}},
        {"request": {"method": "POST", "url": 2}},
        {"request": {"method": "POST"}},
        {"request": {"method": "POST", "url": "Patient", "ifNoneExist": 1}},
        {"fullUrl": 1, "request": {"method": "POST", "url": "Patient"}},
        {"request": {"method": "POST", "url": "Patient"}, "resource": []},
        {"request": {"method": "POST", "url": "Patient"}, "resource": "Patient"},
        {"request": {"method": "PUT", "url": "Patient/1"}, "resource": 1},
        {"request": {"method": "PATCH", "url": "Patient/1"}, "resource": [1]},
        {"request": {"method": "FETCH", "url": "Patient"}},
        {"request": {"method": "POST", "url": "Nowhere"}, "resource": {"resourceType": "Patient"}},
    ],
)
@pytest.mark.parametrize("kind", ["transaction", "batch"])
def test_malformed_entries_are_4xx(context, engine, kind, entry):
    before = table_rows(engine)
    answer = context.post(f"{BASE}/", json=bundle(kind, entry))
    assert answer.status_code < 500, answer.text
    if answer.status_code == 200:
        assert kind == "batch"
        assert_entry_refused(answer.json()["entry"][0], "4")
    else:
        assert_outcome(answer, answer.status_code)
        assert 400 <= answer.status_code < 500
    assert table_rows(engine) == before


@pytest.mark.parametrize("entries", [{"a": 1}, "x", 1, [None]])
def test_entry_must_be_an_array_of_objects(context, engine, entries):
    before = table_rows(engine)
    body = {"resourceType": "Bundle", "type": "batch", "entry": entries}
    assert_outcome(context.post(f"{BASE}/", json=body))
    assert table_rows(engine) == before


def test_patch_leaving_both_deceased_choices_is_400_like_the_put(context, engine):
    created = context.post(f"{BASE}/Patient", json=patient() | {"deceasedBoolean": True})
    assert created.status_code == 201
    path = f"{BASE}/Patient/{created.json()['id']}"
    both = {"deceasedBoolean": True, "deceasedDateTime": "2024-02-01T10:00:00Z"}
    before = table_rows(engine)
    stored = created.json()
    assert_outcome(context.put(path, json=stored | both))
    assert_outcome(context.patch(path, json=both))
    operations = [{"op": "add", "path": "/deceasedDateTime", "value": "2024-02-01T10:00:00Z"}]
    response = context.patch(
        path,
        content=json.dumps(operations),
        headers={"Content-Type": "application/json-patch+json"},
    )
    assert_outcome(response)
    assert table_rows(engine) == before
    again = context.get(path).json()
    assert again["meta"]["versionId"] == "1" and again["deceasedBoolean"] is True
    # one choice replaces the stored other one, as before
    changed = context.patch(path, json={"deceasedDateTime": "2024-02-01T10:00:00Z"})
    assert changed.status_code == 200
    assert "deceasedBoolean" not in changed.json()


def test_patch_leaving_two_choices_is_400_on_any_type(context, engine):
    assert context.post(f"{BASE}/Procedure", json=PROCEDURE).status_code == 201
    both = {
        "performedDateTime": "2024-01-16T10:00:00Z",
        "performedPeriod": {"start": "2024-01-16T10:00:00Z"},
    }
    before = table_rows(engine)
    assert_outcome(context.put(f"{BASE}/Procedure/1", json=PROCEDURE | both | {"id": "1"}))
    assert_outcome(context.patch(f"{BASE}/Procedure/1", json=both))
    assert table_rows(engine) == before


@pytest.mark.parametrize(
    "changes",
    [{"deceasedBoolean": "yes"}, {"name": {"family": "X"}}, {"birthDate": 1980}, {"gender": 1}],
)
def test_patch_with_wrong_json_types_is_400(context, engine, changes):
    created = context.post(f"{BASE}/Patient", json=patient())
    assert created.status_code == 201
    path = f"{BASE}/Patient/{created.json()['id']}"
    before = table_rows(engine)
    assert_outcome(context.patch(path, json=changes))
    assert table_rows(engine) == before
    assert context.get(path).json()["meta"]["versionId"] == "1"


def test_valid_fhir_json_types_are_still_accepted(context):
    """Decimals as JSON numbers (integral or not), dates as strings, null placeholders in
    primitive arrays with their `_given` extensions."""
    body = patient() | {
        "deceasedBoolean": False,
        "name": [
            {
                "family": "Smith",
                "given": ["John", None],
                "_given": [None, {"extension": [{"url": "urn:x", "valueString": "P"}]}],
            }
        ],
    }
    assert context.post(f"{BASE}/Patient", json=body).status_code == 201
    for value in (95, 5.4, 0, -1e-3):
        observation = OBSERVATION | {"valueQuantity": {"value": value, "unit": "mg/dL"}}
        assert context.post(f"{BASE}/Observation", json=observation).status_code == 201
