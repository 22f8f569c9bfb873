"""A create's statements: references left to the foreign keys, follow-up writes in one.

On PostgreSQL a create does not look up the patient and the performer department its
foreign keys check anyway, and sends its kept elements, token rows and first version as one
statement (docs/PERFORMANCE.md, create). What a client sees must not change: a missing
reference is still the 400 naming it, and what was kept is read, searched and versioned.
"""

from __future__ import annotations

import copy

import pytest
from sqlalchemy import event

from codoc_fhir.interactions.database import Engined
from codoc_fhir.warehouse.schema import dwh_data, dwh_resource_history, fhir_token
from tests.factories import count_rows, seed_procedure_context

PROCEDURE = {
    "resourceType": "Procedure",
    "status": "completed",
    "code": {
        "coding": [
            {"code": "COLO001", "display": "Colonoscopy"},
            {"system": "http://snomed.info/sct", "code": "73761001", "display": "Colonoscopy"},
        ]
    },
    "subject": {"reference": "Patient/1"},
    "performedDateTime": "2024-01-15T14:00:00Z",
    "performer": [{"actor": {"reference": "Organization/department-1"}}],
}


@pytest.fixture
def context(engine):
    return seed_procedure_context(engine)


def _statements(client, body) -> tuple[list[str], object]:
    """The SQL the server runs for one create, and the response."""
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(" ".join(statement.split()))

    server_engine = client.app.state.server.engine
    event.listen(server_engine, "before_cursor_execute", record)
    try:
        response = client.post("/v4.3.0/Procedure", json=body)
    finally:
        event.remove(server_engine, "before_cursor_execute", record)
    return seen, response


def test_a_valid_create_asks_nothing_its_foreign_keys_check(make_client, engine):
    """The generic create (the fast paths off: a plain create is otherwise written in one
    statement on the async pool, tests/api/test_fast_create_statement.py)."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite runs every look-up (its foreign-key errors name no constraint)")
    client = make_client(CODOC_FAST_READ="false")
    seed_procedure_context(engine)
    assert client.post("/v4.3.0/Procedure", json=PROCEDURE).status_code == 201  # the concept
    statements, response = _statements(client, PROCEDURE)
    assert response.status_code == 201, response.text
    selects = [s for s in statements if s.startswith("SELECT")]
    assert not [s for s in selects if "FROM dwh_patient " in s + " "], selects
    assert not [s for s in selects if "FROM dwh_thesaurus_department" in s], selects
    follow_ups = [s for s in statements if "INSERT INTO dwh_resource_history" in s]
    assert len(follow_ups) == 1 and "INSERT INTO fhir_token" in follow_ups[0], statements
    assert not [s for s in statements if s.startswith("INSERT INTO fhir_token")], statements


def test_what_a_create_kept_is_read_searched_and_versioned(client, context, engine):
    created = client.post("/v4.3.0/Procedure", json=PROCEDURE).json()
    read = client.get(f"/v4.3.0/Procedure/{created['id']}").json()
    assert read == created
    assert read["code"]["coding"][1]["code"] == "73761001"
    found = client.get("/v4.3.0/Procedure?code=http://snomed.info/sct|73761001").json()
    assert [entry["resource"]["id"] for entry in found["entry"]] == [created["id"]]
    version = client.get(f"/v4.3.0/Procedure/{created['id']}/_history/1").json()
    assert version == created
    assert count_rows(engine, dwh_resource_history) == 1
    assert count_rows(engine, fhir_token) >= 1


@pytest.mark.parametrize(
    ("change", "needle", "element"),
    [
        ({"subject": {"reference": "Patient/999"}}, "Patient with ID 999", "Procedure.subject"),
        (
            {"performer": [{"actor": {"reference": "Organization/department-77"}}]},
            "Department with ID 77",
            "Procedure.performer[0].actor",
        ),
        (
            {
                "performer": [
                    {"actor": {"reference": "Organization/department-1"}},
                    {"actor": {"reference": "Organization/department-78"}},
                ]
            },
            "Department with ID 78",
            "Procedure.performer[1].actor",
        ),
        (
            {"subject": {"reference": "Patient/999"}, "encounter": {"reference": "Encounter/1"}},
            "Patient with ID 999",
            "Procedure.subject",
        ),
    ],
)
def test_a_missing_reference_is_still_the_400_naming_it(
    client, context, engine, change, needle, element
):
    body = copy.deepcopy(PROCEDURE) | change
    response = client.post("/v4.3.0/Procedure", json=body)
    assert response.status_code == 400, response.text
    issue = response.json()["issue"][0]
    assert issue["code"] == "not-found"
    assert needle in issue["diagnostics"]
    assert issue["expression"] == [element]
    assert count_rows(engine, dwh_data, dwh_resource_history, fhir_token) == 0


def _transactions(client, monkeypatch, body) -> tuple[int, object]:
    """How many write transactions one create of `body` ran, and the response."""
    runs = []
    original = Engined.run_write

    def counted(self, work):
        runs.append(work)
        return original(self, work)

    monkeypatch.setattr(Engined, "run_write", counted)
    response = client.post("/v4.3.0/Procedure", json=body)
    monkeypatch.setattr(Engined, "run_write", original)
    return len(runs), response


def test_a_create_refused_before_any_skipped_look_up_runs_once(
    client, context, engine, monkeypatch
):
    """An invalid body is refused as it is: the run with every look-up would refuse it the
    same way. One refused after a skipped look-up runs again to name the missing row."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite runs every look-up: one run whatever the answer")
    invalid = copy.deepcopy(PROCEDURE) | {"status": "finished-ish"}
    runs, response = _transactions(client, monkeypatch, invalid)
    assert response.status_code == 400, response.text
    assert runs == 1
    missing = copy.deepcopy(PROCEDURE) | {"subject": {"reference": "Patient/999"}}
    runs, response = _transactions(client, monkeypatch, missing)
    assert response.status_code == 400 and "Patient with ID 999" in response.text
    assert runs == 2
    assert count_rows(engine, dwh_data, dwh_resource_history, fhir_token) == 0
