"""The fast read (PostgreSQL) through a database restart: pooled connections die, the
next read is retried once on a fresh connection and answers 200; while the database is
away reads answer the generic 503; and a real server with two workers does the same."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from codoc_fhir.config import Settings
from codoc_fhir.resources.fast_read import FastReader, ReadFailed
from codoc_fhir.resources.registry import build_registry
from tests.conftest import empty_tables, make_settings
from tests.integrity.tcp_proxy import TcpProxy
from tests.integrity.test_concurrent_writes import JSON, patient
from tests.integrity.test_database_outage import _through
from tests.security.servers import running_server

PROCEDURE = {
    "resourceType": "Procedure",
    "status": "completed",
    "code": {"coding": [{"system": "urn:codoc:fhir:codesystem:Acte", "code": "ZZQX002"}]},
    "performedDateTime": "2024-03-05T10:30:00Z",
}


@pytest.fixture
def proxy(database_url: str, engine: Any) -> Any:
    if not database_url.startswith("postgresql"):
        pytest.skip("the fast read is PostgreSQL's; an SQLite file cannot go away")
    empty_tables(engine)
    backend = make_url(database_url)
    proxy = TcpProxy((backend.host or "127.0.0.1", backend.port or 5432))
    proxy.start()
    yield proxy
    proxy.stop()


def _restart(proxy: TcpProxy) -> None:
    """Every open connection dropped, new ones accepted: a database that restarted."""
    proxy.stop()
    proxy.start()


def _procedure_id(client: Any) -> str:
    subject = client.post("/v4.3.0/Patient", json=patient("IPP-FAST"), headers=JSON).json()
    body = {**PROCEDURE, "subject": {"reference": f"Patient/{subject['id']}"}}
    created = client.post("/v4.3.0/Procedure", json=body, headers=JSON)
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def test_a_dropped_connection_is_retried_once_on_a_fresh_one(proxy, make_client, database_url):
    number = int(_procedure_id(make_client()))
    settings: Settings = make_settings(_through(proxy, database_url))
    kind = build_registry(settings).types["Procedure"].kinds[0]
    reader = FastReader(settings.database_url)

    async def scenario() -> list[Any]:
        seen = [await reader.fetch(kind, number)]
        _restart(proxy)
        seen.append(await reader.fetch(kind, number))  # the pooled connection is dead
        seen.append(await reader.fetch(kind, number))
        proxy.stop()
        try:
            await reader.fetch(kind, number)
            seen.append("answered with the database away")
        except ReadFailed:
            seen.append("failed")
        proxy.start()
        await reader.close()
        return seen

    first, after_restart, again, away = asyncio.run(scenario())
    assert first is not None and first["data_num"] == number
    assert after_restart == first and again == first
    assert away == "failed"  # the generic read then answers (503)


def test_a_server_reads_through_a_database_restart(proxy, database_url, tmp_path):
    env = {
        "CODOC_DATABASE_URL": _through(proxy, database_url),
        "CODOC_RATE_LIMIT_ANONYMOUS": "off",
        "CODOC_RATE_LIMIT_AUTHENTICATED": "off",
    }
    with running_server(tmp_path, env, workers=2) as url, httpx.Client(base_url=url) as client:
        path = f"/v4.3.0/Procedure/{_procedure_id(client)}"
        before = [client.get(path) for _ in range(20)]
        assert {answer.status_code for answer in before} == {200}
        _restart(proxy)
        after = [client.get(path) for _ in range(20)]
        assert {answer.status_code for answer in after} == {200}
        assert {answer.content for answer in after} == {before[0].content}
        proxy.stop()
        away = client.get(path, timeout=30)
        assert away.status_code == 503
        assert away.json()["issue"][0]["code"] == "transient"
        proxy.start()


def test_a_fast_create_through_a_database_restart(proxy, make_client, database_url):
    """The create written in one statement (resources/fast_create.py) on a pooled connection
    the restart killed is run again on a fresh one (its reserved key makes that safe: a run
    that had committed meets its own key), and answers 201 once; with the database away,
    the generic create answers 503."""
    client = make_client(CODOC_DATABASE_URL=_through(proxy, database_url))
    creator = client.app.state.fast_create.creator
    subject = client.post("/v4.3.0/Patient", json=patient("IPP-FAST-CREATE"), headers=JSON)
    body = {**PROCEDURE, "subject": {"reference": f"Patient/{subject.json()['id']}"}}
    statuses = [client.post("/v4.3.0/Procedure", json=body, headers=JSON).status_code]
    statuses.append(client.post("/v4.3.0/Procedure", json=body, headers=JSON).status_code)
    written = creator.written
    _restart(proxy)
    statuses.append(client.post("/v4.3.0/Procedure", json=body, headers=JSON).status_code)
    assert statuses == [201, 201, 201]
    assert written >= 1 and creator.written == written + 1
    proxy.stop()
    away = client.post("/v4.3.0/Procedure", json=body, headers=JSON)
    assert away.status_code == 503, away.text
    proxy.start()
    found = client.get("/v4.3.0/Procedure", params={"_summary": "count"}).json()
    assert found["total"] == 3
