"""The limit is global: requests spread over several worker processes share one counter,
in each store (local file, database, Redis); the local store writes no database row."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from itertools import cycle

import httpx
import pytest
from sqlalchemy import func, select

from codoc_fhir.warehouse.schema import fhir_rate_limit
from tests.security.servers import running_server

PROBE = "/v4.3.0/Organization?_summary=count"  # /metadata is never counted


def _get(url: str, address: str) -> int:
    # The test plays a trusted proxy (CODOC_TRUSTED_PROXIES below): each test gets its own
    # client address through X-Forwarded-For.
    return httpx.get(url + PROBE, headers={"X-Forwarded-For": address}, timeout=30).status_code


def _spread(urls: list[str], address: str, count: int) -> list[int]:
    targets = [url for url, _ in zip(cycle(urls), range(count), strict=False)]
    with ThreadPoolExecutor(max_workers=20) as pool:
        return list(pool.map(lambda url: _get(url, address), targets))


def _address() -> str:
    raw = uuid.uuid4().bytes
    return f"10.{raw[0]}.{raw[1]}.{raw[2]}"


def _rows_of(engine, address: str) -> int:
    """fhir_rate_limit rows of one client address."""
    query = select(func.count()).where(fhir_rate_limit.c.bucket_key.like(f"ip:{address}:%"))
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def _env(database_url: str, store: str) -> dict[str, str]:
    env = {
        "CODOC_DATABASE_URL": database_url,
        "CODOC_RATE_LIMIT_ANONYMOUS": "100/hour",
        "CODOC_TRUSTED_PROXIES": "127.0.0.1",
        "CODOC_RATE_LIMIT_STORE": store,
    }
    if store == "redis":
        env["CODOC_REDIS_URL"] = "redis://127.0.0.1:6379/0"
    return env


@pytest.mark.parametrize("store", ["local", "database", "redis"])
def test_101st_request_is_throttled_across_two_processes(database_url, engine, tmp_path, store):
    env = _env(database_url, store)
    address = _address()
    with running_server(tmp_path, env) as first, running_server(tmp_path, env) as second:
        statuses = _spread([first, second], address, 100)
        assert statuses == [200] * 100
        assert _get(first, address) == 429
        assert _get(second, address) == 429
        assert _get(second, _address()) == 200  # another client is not affected
    assert _rows_of(engine, address) == (1 if store == "database" else 0)


@pytest.mark.parametrize("store", ["local", "database"])
def test_serve_with_gunicorn_workers_shares_the_limit(database_url, tmp_path, store):
    if not database_url.startswith("postgresql"):
        pytest.skip("production mode is exercised on PostgreSQL")
    env = _env(database_url, store)
    address = _address()
    with running_server(tmp_path, env, workers=2) as url:
        statuses = _spread([url], address, 100)
        assert statuses == [200] * 100
        throttled = httpx.get(url + PROBE, headers={"X-Forwarded-For": address})
        assert throttled.status_code == 429
        assert int(throttled.headers["retry-after"]) > 0
        log = "\n".join(path.read_text() for path in tmp_path.glob("server-*.log"))
        assert log.count("Booting worker") == 2
