"""The creates written in one statement (resources/fast_create.py) store exactly what the
generic create stores: the same rows, kept elements, token rows and first versions, and
answer the same resources. Whatever the statement cannot write is handed on and still
answered as the generic create answers it.

Each comparison loads the same bodies, in the same order, into the same freshly emptied
warehouse twice over HTTP: once with the fast paths off (the generic create only), once
with them on. The keys may differ between the two runs (the fast create takes its keys from
a block of the sequence, a create handed on takes the next one), so the second run's rows
are compared under the first run's keys, matched by the order of the answers.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, select, text, update

from codoc_fhir.resources.fast_create import HandedOn
from codoc_fhir.warehouse import schema
from tests.conftest import empty_tables
from tests.factories import seed_procedure_context
from tests.resources.test_create_many import condition, lab_forms, medication, report


@pytest.fixture(autouse=True)
def _postgresql(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("the one-statement create runs on PostgreSQL's async pool; SQLite has none")


JSON = {"Content-Type": "application/fhir+json"}
STAMPS = {"update_date", "history_date", "history_num"}
TABLES = (
    schema.dwh_data,
    schema.dwh_thesaurus_data,
    schema.fhir_token,
    schema.dwh_resource_history,
)


def procedure(n: int, **changes: Any) -> dict[str, Any]:
    return {
        "resourceType": "Procedure",
        "status": "completed",
        "identifier": [{"use": "usual", "system": "urn:test:act", "value": f"P-{n}"}],
        "code": {"coding": [{"system": "urn:test:act", "code": f"ACT{n % 2}", "display": "Act"}]},
        "subject": {"reference": "Patient/1"},
        "performedPeriod": {"start": "2024-01-15T14:00:00+02:00", "end": "2024-01-15T15:00:00Z"},
        "performer": [
            {"actor": {"reference": "Organization/department-1"}},
            {"actor": {"reference": "Organization/unit-1"}},
            {"actor": {"reference": "Practitioner/doc-7", "display": "Dr Who"}},
        ],
        "reasonCode": [{"coding": [{"system": "http://snomed.info/sct", "code": "1234"}]}],
        "note": [{"text": f"note {n}"}],
        **changes,
    }


def without_stay(make: Callable[[int], dict[str, Any]]) -> Callable[[int], dict[str, Any]]:
    """tests/resources/test_create_many.py's bodies of `make`, without their encounter (a
    stay look-up, which the statement hands on: tested below)."""

    def made(n: int) -> dict[str, Any]:
        return {name: value for name, value in make(n).items() if name != "encounter"}

    made.__name__ = make.__name__
    return made


MAKERS = [procedure, *(without_stay(make) for make in (lab_forms, medication, report, condition))]


def first_codes(bodies: list[dict[str, Any]]) -> list[bool]:
    """For each body, whether an earlier body has its code: the first create of a code the
    thesaurus lacks is the generic create's (it creates the concept)."""
    codes = [
        orjson.dumps(body.get("code") or body.get("medicationCodeableConcept")) for body in bodies
    ]
    return [code in codes[:position] for position, code in enumerate(codes)]


def run(make_client: Any, engine: Engine, bodies: list[dict[str, Any]], *, fast: bool) -> Any:
    """Empty and seed the warehouse, then POST the bodies in order; the answers, which
    of them the one statement wrote, and the rows stored."""
    empty_tables(engine)
    seed_procedure_context(engine)
    client = make_client(CODOC_FAST_READ=str(fast).lower())
    creator = client.app.state.fast_create.creator if fast else None
    answers, written = [], []
    for body in bodies:
        before = creator.written if creator else 0
        response = client.post(
            f"/v4.3.0/{body['resourceType']}", content=orjson.dumps(body), headers=JSON
        )
        answers.append((response.status_code, response.json()))
        written.append(bool(creator) and creator.written > before)
    return answers, written, snapshot(engine)


def snapshot(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    found = {}
    with engine.connect() as conn:
        for table in TABLES:
            rows = conn.execute(select(table)).mappings()
            found[table.name] = [dict(row) for row in rows]
    return found


def renamed(
    answers: list[Any], stored: dict[str, list[dict[str, Any]]], keys: dict[str, str]
) -> tuple[list[Any], dict[str, list[Any]]]:
    """The answers and rows of a run with its new resources' ids replaced by `keys` (this
    run's id -> the other run's), the time stamps left out, every table sorted."""

    def resource(value: dict[str, Any]) -> dict[str, Any]:
        value = copy.deepcopy(value)
        if value.get("resourceType") == "OperationOutcome":
            return value
        old = value["id"]
        value["id"] = keys[old]
        for identifier in value.get("identifier", []):
            if identifier.get("use") == "official" and identifier["value"] == old:
                identifier["value"] = keys[old]
        value["meta"].pop("lastUpdated")
        return value

    rows: dict[str, list[Any]] = {}
    for name, table_rows in stored.items():
        out = []
        for row in table_rows:
            row = {column: value for column, value in row.items() if column not in STAMPS}
            for column in ("data_num", "row_num", "table_key"):
                if column in row and (name != "fhir_token" or row["table_name"] == "dwh_data"):
                    row[column] = int(keys.get(str(row[column]), row[column]))
            if "fhir_id" in row:
                row["fhir_id"] = keys[row["fhir_id"]]
                row["resource_json"] = resource(orjson.loads(row["resource_json"]))
            out.append(row)
        rows[name] = sorted(out, key=repr)
    return [(status, resource(body)) for status, body in answers], rows


def compare(make_client: Any, engine: Engine, bodies: list[dict[str, Any]]) -> list[bool]:
    """Assert that both runs store and answer the same; which creates the statement wrote."""
    generic, _, generic_rows = run(make_client, engine, bodies, fast=False)
    fast, written, fast_rows = run(make_client, engine, bodies, fast=True)
    ids = [
        (mine[1].get("id"), theirs[1].get("id")) for mine, theirs in zip(fast, generic, strict=True)
    ]
    keys = {mine: theirs for mine, theirs in ids if mine is not None}
    fast_seen, fast_stored = renamed(fast, fast_rows, keys)
    generic_seen, generic_stored = renamed(
        generic, generic_rows, {theirs: theirs for _, theirs in ids if theirs}
    )
    assert fast_seen == generic_seen
    for table in TABLES:
        assert fast_stored[table.name] == generic_stored[table.name], table.name
    return written


@pytest.mark.parametrize("make", MAKERS, ids=[make.__name__ for make in MAKERS])
def test_the_one_statement_stores_what_the_generic_create_stores(make_client, engine, make):
    """Six bodies, then the first three again: the first create of a code the thesaurus
    lacks is the generic create's (it creates the concept), every later one is the
    statement's."""
    bodies = [make(n) for n in (*range(6), *range(3))]
    assert sum(first_codes(bodies)) >= 3  # the statement has creates to write
    assert compare(make_client, engine, bodies) == first_codes(bodies)


def test_what_the_statement_cannot_tell_is_handed_on(make_client, engine):
    bodies = [
        procedure(0),  # creates the concept ACT0
        procedure(2),  # written here
        procedure(4, encounter={"reference": "Encounter/1"}),  # a stay look-up
        procedure(6, performer=[{"actor": {"reference": "Organization/department-1"}}] * 2),
        procedure(8, subject={"reference": "Patient/999"}),  # refused by the foreign key
        procedure(10, performer=[{"actor": {"reference": "Organization/department-999"}}]),
        procedure(12, status="bogus"),  # refused by validation
        procedure(14, identifier=[{"use": "official", "system": "urn:x", "value": "1"}]),
        procedure(16),  # written here
    ]
    written = compare(make_client, engine, bodies)
    assert written == [False, True, False, False, False, False, False, True, True]


@pytest.mark.parametrize(
    "change",
    [
        update(schema.dwh_thesaurus_department).values(department_str="Renamed department"),
        update(schema.dwh_thesaurus_unit).values(unit_str="Renamed unit"),
        update(schema.dwh_thesaurus_data).values(concept_str="Relabelled act"),
    ],
    ids=["department", "unit", "concept"],
)
def test_a_stale_cached_name_writes_nothing_and_is_forgotten(make_client, engine, change):
    """The names the statement renders with are re-checked in it: renamed meanwhile (by
    SQL, by another process), the statement writes nothing, the generic create answers the
    new name, and the next create is the statement's again, with the new name."""
    empty_tables(engine)
    seed_procedure_context(engine)
    client = make_client()
    creator = client.app.state.fast_create.creator
    post: Callable[[dict[str, Any]], Any] = lambda body: client.post(  # noqa: E731
        "/v4.3.0/Procedure", content=orjson.dumps(body), headers=JSON
    )
    assert post(procedure(0)).status_code == 201  # the concept is created
    assert post(procedure(2)).status_code == 201
    assert creator.written == 1
    with engine.begin() as conn:
        conn.execute(change)
    rows_before = _count(engine)
    answer = post(procedure(4))
    assert answer.status_code == 201, answer.text
    assert creator.written == 1  # handed on
    assert _count(engine) == rows_before + 1  # one row, not two
    again = post(procedure(6))
    assert creator.written == 2
    for created in (answer, again):
        read = client.get(f"/v4.3.0/Procedure/{created.json()['id']}").json()
        assert read == created.json()
    shown = orjson.dumps(again.json()).decode()
    assert "Renamed" in shown or "Relabelled" in shown


def _count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM dwh_data")).scalar_one())


def test_a_block_reserved_before_the_sequence_was_reset_is_not_used(make_client, engine):
    """TRUNCATE ... RESTART IDENTITY under a running server: the keys it had reserved are
    ahead of the sequence, where a later generic create would take them. The statement
    refuses them (the create is handed on), a new block is reserved, and the generic creates
    that follow never meet a key the fast create used."""
    empty_tables(engine)
    seed_procedure_context(engine)
    client = make_client()
    creator = client.app.state.fast_create.creator

    def post(body: dict[str, Any]) -> Any:
        answer = client.post("/v4.3.0/Procedure", content=orjson.dumps(body), headers=JSON)
        assert answer.status_code == 201, answer.text
        return answer.json()["id"]

    post(procedure(0))
    post(procedure(2))
    assert creator.written == 1
    empty_tables(engine)
    seed_procedure_context(engine)
    ids = [post(procedure(n)) for n in (0, 2, 4)]
    generic = client.post(
        "/v4.3.0/Procedure", content=orjson.dumps(procedure(6)), headers={**JSON, "Prefer": "x"}
    )
    assert generic.status_code == 201, generic.text
    assert creator.written == 3  # the second run's first create of ACT0 made its concept
    assert len({*ids, generic.json()["id"]}) == 4
    assert _count(engine) == 4


def test_a_write_whose_answer_was_lost_is_not_written_twice(make_client, engine):
    """The reader runs a statement again when its connection died unseen. Had the first run
    committed, the second meets its own key: the create is answered as written, once; a key
    taken by another row is never answered as this create."""
    empty_tables(engine)
    seed_procedure_context(engine)
    client = make_client()
    creator = client.app.state.fast_create.creator
    kind = client.app.state.server.registry.types["Procedure"].kinds[0]
    client.post("/v4.3.0/Procedure", content=orjson.dumps(procedure(0)), headers=JSON)

    async def keyed(body: dict[str, Any], num: int | None = None) -> Any:
        planned = creator.plan(kind, *await creator._mapped(kind, body))
        return creator.keyed(planned, num or await creator._reserved_key(kind))

    async def twice() -> tuple[Any, Any]:
        planned = await keyed(procedure(2))
        await creator._write(planned)
        await creator._write(planned)  # as the retry of a statement that had committed
        other = await keyed(procedure(4), planned.num)  # the same key
        try:
            await creator._write(other)
        except HandedOn:
            return planned, None
        return planned, other

    planned, other = client.portal.call(twice)
    assert other is None  # handed on: the generic create answers it
    assert _count(engine) == 2
    assert kind.table.name not in creator.keys  # the block is dropped: a key was not its own
    with engine.connect() as conn:
        stored = conn.execute(select(schema.dwh_data.c.data_num)).scalars().all()
    assert planned.num in stored
