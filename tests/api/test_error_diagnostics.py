"""Errors a newcomer reads: FHIRPath expressions (`Procedure.subject`) whatever check raised
them, and JSON Patch failures that name the operation and its path, never Python internals."""

from __future__ import annotations

import pytest

from tests.factories import seed_procedure_context
from tests.resources.test_procedure import SEED_PROCEDURE

JSON_PATCH = {"content-type": "application/json-patch+json"}


@pytest.fixture
def procedure(client, engine):
    seed_procedure_context(engine)
    created = client.post("/v4.3.0/procedure/", json=SEED_PROCEDURE)
    assert created.status_code == 201, created.text
    return "/v4.3.0/procedure/1/"


def _issue(response, status: int = 400) -> dict:
    assert response.status_code == status, response.text
    return response.json()["issue"][0]


@pytest.mark.parametrize(
    "change, expression",
    [
        ({"subject": {"reference": "Patient/99"}}, "Procedure.subject"),  # links check
        ({"status": "done"}, "Procedure.status"),  # code list check
        ({"performedDateTime": "2024-13-01"}, "Procedure.performedDateTime"),
        ({"code": {"coding": [{"code": 12}]}}, None),  # the R4B model check
    ],
)
def test_body_errors_name_the_element_in_fhirpath_form(client, procedure, change, expression):
    body = {**SEED_PROCEDURE, **change}
    for response in (
        client.post("/v4.3.0/procedure/", json=body),
        client.put(procedure, json={**body, "id": "1"}),
    ):
        expressions = _issue(response)["expression"]
        assert all(item.startswith("Procedure.") for item in expressions), expressions
        if expression:
            assert expressions == [expression]


def test_missing_field_is_named_with_its_type(client, procedure):
    body = {key: value for key, value in SEED_PROCEDURE.items() if key != "performedDateTime"}
    issue = _issue(client.post("/v4.3.0/Procedure", json=body))
    assert issue["code"] == "required"
    assert issue["expression"] == ["Procedure.performedDateTime"]


def test_bundle_entry_errors_name_the_element_inside_the_entry(client, procedure):
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {**SEED_PROCEDURE, "subject": {"reference": "Patient/99"}},
                "request": {"method": "POST", "url": "Procedure"},
            }
        ],
    }
    issue = _issue(client.post("/v4.3.0/", json=bundle))
    assert issue["expression"] == ["Bundle.entry[0].resource.subject"]


@pytest.mark.parametrize(
    "operations, diagnostics, expression",
    [
        (
            [{"op": "remove", "path": "/nosuch"}],
            "JSON Patch operation 0 (remove /nosuch) failed: no such element in the resource",
            ["Procedure.nosuch"],
        ),
        (
            [
                {"op": "replace", "path": "/performedDateTime", "value": "2024-02-01"},
                {"op": "test", "path": "/status", "value": "completed"},
            ],
            "JSON Patch operation 1 (test /status) failed: the value differs from the tested one",
            ["Procedure.status"],
        ),
        (
            [{"op": "add", "path": "/performer/7/actor", "value": {}}],
            "JSON Patch operation 0 (add /performer/7/actor) failed: its parent element does "
            "not exist, or the list index is out of range",
            ["Procedure.performer[7].actor"],
        ),
        (
            [{"op": "frobnicate", "path": "/status"}],
            "JSON Patch operation 0: 'op' must be one of add, remove, replace, move, copy, "
            "test, got 'frobnicate'",
            None,
        ),
        (
            [{"op": "replace", "path": "status", "value": "x"}],
            "JSON Patch operation 0 (replace): 'path' must be a JSON Pointer such as /status",
            None,
        ),
        (
            [{"op": "add", "path": "/note"}],
            "JSON Patch operation 0 (add /note): 'value' is required",
            None,
        ),
        (["remove /status"], "JSON Patch operation 0 must be an object with 'op' and 'path'", None),
    ],
)
def test_json_patch_errors_name_operation_and_path(
    client, procedure, operations, diagnostics, expression
):
    issue = _issue(client.patch(procedure, json=operations, headers=JSON_PATCH))
    assert issue["diagnostics"] == diagnostics
    assert issue.get("expression") == expression
    for python_detail in ("{'", "<class", "resourceType': "):
        assert python_detail not in issue["diagnostics"]
    stored = client.get(procedure).json()
    assert stored["meta"]["versionId"] == "1"  # nothing applied
    assert stored["performedDateTime"] == SEED_PROCEDURE["performedDateTime"]


def test_a_valid_json_patch_still_applies(client, procedure):
    operations = [
        {"op": "test", "path": "/code/coding/0/code", "value": "COLO001"},
        {"op": "replace", "path": "/performedDateTime", "value": "2024-02-01T10:00:00Z"},
        {"op": "remove", "path": "/encounter"},
    ]
    response = client.patch(procedure, json=operations, headers=JSON_PATCH)
    assert response.status_code == 200, response.text
    assert response.json()["performedDateTime"] == "2024-02-01T10:00:00Z"
    assert "encounter" not in response.json()
