"""Pooled connections the server ended (PostgreSQL): no pre-ping round trip on checkout,
a connection already closed is replaced before it is handed out, and a write whose
connection dies unseen runs again only when none of its work was done.

The backends are ended for real, with pg_terminate_backend from an admin connection;
engine events only choose the moment (after checkout, after a statement, at COMMIT).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url

from codoc_fhir.warehouse.db import make_engine
from tests.conftest import POSTGRES_ADMIN_URL
from tests.integrity.test_concurrent_writes import JSON, patient


@pytest.fixture
def admin(database_url: str) -> Iterator[Engine]:
    """An autocommit engine on the cluster's maintenance database (not the test's)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("an SQLite file has no server to end its connections")
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    yield admin
    admin.dispose()


def _terminate_all(admin: Engine, database_url: str) -> int:
    """End every backend of the test database, waiting for each to be gone; how many."""
    query = text(
        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) FROM pg_stat_activity "
        "WHERE datname = :name AND pid <> pg_backend_pid()"
    )
    with admin.connect() as conn:
        return int(conn.execute(query, {"name": make_url(database_url).database}).scalar_one())


def _terminate(admin: Engine, pid: int) -> None:
    with admin.connect() as conn:
        assert conn.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid}).scalar()


def _pid(conn: Connection) -> int:
    return int(conn.connection.dbapi_connection.info.backend_pid)  # type: ignore[union-attr]


def _last_query(admin: Engine, pid: int) -> str:
    with admin.connect() as conn:
        query = text("SELECT query FROM pg_stat_activity WHERE pid = :pid")
        return str(conn.execute(query, {"pid": pid}).scalar_one())


def test_checkout_sends_nothing(admin, database_url):
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            pid = _pid(conn)
            conn.execute(text("SELECT 'checkout marker'"))
        assert _last_query(admin, pid) == "ROLLBACK"  # the pool's reset on return
        with engine.connect() as conn:
            assert _pid(conn) == pid  # the pooled connection, handed out again
            assert _last_query(admin, pid) == "ROLLBACK"  # a pre-ping would show ";"
    finally:
        engine.dispose()


def test_a_connection_the_server_ended_is_replaced_on_checkout(admin, database_url):
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            pid = _pid(conn)
            conn.execute(text("SELECT 1"))
        _terminate(admin, pid)
        with engine.connect() as conn:
            assert _pid(conn) != pid
            assert conn.execute(text("SELECT 1")).scalar_one() == 1
    finally:
        engine.dispose()


def _patients(client: Any) -> int:
    found = client.get("/v4.3.0/Patient", params={"_summary": "count"})
    assert found.status_code == 200, found.text
    return int(found.json()["total"])


def test_requests_after_every_backend_was_ended_succeed(admin, database_url, client):
    created = client.post("/v4.3.0/Patient", json=patient("IPP-END-1"), headers=JSON)
    assert created.status_code == 201, created.text
    path = f"/v4.3.0/Patient/{created.json()['id']}"
    assert client.get(path).status_code == 200
    assert _terminate_all(admin, database_url) >= 1
    assert client.get(path).status_code == 200
    again = client.post("/v4.3.0/Patient", json=patient("IPP-END-2"), headers=JSON)
    assert again.status_code == 201, again.text
    assert _terminate_all(admin, database_url) >= 1
    third = client.post("/v4.3.0/Patient", json=patient("IPP-END-3"), headers=JSON)
    assert third.status_code == 201, third.text
    assert _patients(client) == 3


@pytest.fixture
def drop_once(admin: Engine, client: Any) -> Iterator[Callable[[str], list[int]]]:
    """`drop_once(event_name)`: the first write transaction of the app to reach that
    engine event has its backend ended there; the list of the write transactions begun
    since (their backend pids) is returned to be read after the request."""
    engine = client.app.state.server.engine
    listeners: list[tuple[str, Any]] = []

    def arm(name: str) -> list[int]:
        begun: list[int] = []
        dropped: list[int] = []

        def on_begin(conn: Connection) -> None:
            if conn.get_execution_options().get("codoc_write"):
                begun.append(_pid(conn))

        def drop(conn: Connection, *_args: Any) -> None:
            if conn.get_execution_options().get("codoc_write") and not dropped:
                dropped.append(_pid(conn))
                _terminate(admin, dropped[0])

        for event_name, listener in (("begin", on_begin), (name, drop)):
            event.listen(engine, event_name, listener)
            listeners.append((event_name, listener))
        return begun

    yield arm
    for event_name, listener in listeners:
        event.remove(engine, event_name, listener)


def test_a_write_dropped_before_its_first_statement_runs_again(drop_once, client):
    begun = drop_once("begin")  # checked out alive, ended before BEGIN reaches it
    created = client.post("/v4.3.0/Patient", json=patient("IPP-DROP-BEGIN"), headers=JSON)
    assert created.status_code == 201, created.text
    assert len(begun) == 2 and begun[0] != begun[1]  # the retry had a new connection
    assert _patients(client) == 1


@pytest.mark.parametrize("moment", ["after_cursor_execute", "commit"])
def test_a_write_dropped_after_work_began_is_not_run_again(drop_once, client, moment):
    begun = drop_once(moment)
    refused = client.post("/v4.3.0/Patient", json=patient("IPP-DROP-LATE"), headers=JSON)
    assert refused.status_code == 503, refused.text
    assert refused.json()["issue"][0]["code"] == "transient"
    assert len(begun) == 1
    assert _patients(client) == 0  # ended before COMMIT reached it: rolled back
