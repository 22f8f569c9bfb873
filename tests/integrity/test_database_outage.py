"""The database goes away under load and comes back: 503 with Retry-After meanwhile,
never a 500, recovery without a restart, and no access-log row lost."""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from codoc_fhir.warehouse.schema import fhir_access_log
from tests.conftest import empty_tables
from tests.integrity.tcp_proxy import TcpProxy
from tests.integrity.test_concurrent_writes import JSON, patient
from tests.security.servers import running_server


def _through(proxy: TcpProxy, database_url: str) -> str:
    url = make_url(database_url).set(host="127.0.0.1", port=proxy.port)
    return url.render_as_string(hide_password=False)


def _hammer(api: str, patient_id: str, count: int) -> Counter[int]:
    """`count` reads and creates from 4 threads; the statuses seen."""

    def one(index: int) -> int:
        if index % 4 == 0:
            body = patient(f"IPP-LOAD-{time.monotonic_ns()}")
            return httpx.post(f"{api}/Patient", json=body, headers=JSON, timeout=30).status_code
        return httpx.get(f"{api}/Patient/{patient_id}", timeout=30).status_code

    with ThreadPoolExecutor(max_workers=4) as pool:
        return Counter(pool.map(one, range(count)))


def _logged_patient_requests(engine: Any) -> int:
    with engine.connect() as conn:
        query = select(func.count()).where(fhir_access_log.c.url.like("/v4.3.0/Patient%"))
        return int(conn.execute(query).scalar_one())


def test_database_outage_is_503_then_recovers(database_url, engine, tmp_path):
    if not database_url.startswith("postgresql"):
        pytest.skip("an embedded SQLite file cannot go away: outages are PostgreSQL's")
    empty_tables(engine)
    backend = make_url(database_url)
    proxy = TcpProxy((backend.host or "127.0.0.1", backend.port or 5432))
    proxy.start()
    env = {
        "CODOC_DATABASE_URL": _through(proxy, database_url),
        "CODOC_RATE_LIMIT_ANONYMOUS": "off",
        "CODOC_RATE_LIMIT_AUTHENTICATED": "off",
    }
    sent = 0
    try:
        with running_server(tmp_path, env, workers=2) as url:
            api = f"{url}/v4.3.0"
            first = httpx.post(f"{api}/Patient", json=patient("IPP-UP"), headers=JSON)
            assert first.status_code == 201
            patient_id = first.json()["id"]
            before = _hammer(api, patient_id, 40)
            sent += 41
            assert set(before) == {200, 201}, before

            proxy.stop()
            during = _hammer(api, patient_id, 40)
            sent += 40
            assert set(during) == {503}, during
            refused = httpx.get(f"{api}/Patient/{patient_id}", timeout=30)
            sent += 1
            assert refused.status_code == 503
            assert int(refused.headers["retry-after"]) > 0
            issue = refused.json()["issue"][0]
            assert issue["code"] == "transient"
            assert "unavailable" in issue["diagnostics"]

            proxy.start()
            statuses = Counter[int]()
            deadline = time.time() + 30
            while time.time() < deadline:
                statuses[httpx.get(f"{api}/Patient/{patient_id}", timeout=30).status_code] += 1
                sent += 1
                if statuses[200] >= 5:
                    break
                time.sleep(0.2)
            assert statuses[200] >= 5 and set(statuses) <= {200, 503}, statuses
            after = _hammer(api, patient_id, 40)
            sent += 40
            assert set(after) == {200, 201}, after

            deadline = time.time() + 20
            while _logged_patient_requests(engine) < sent and time.time() < deadline:
                time.sleep(0.5)
            assert _logged_patient_requests(engine) == sent
    finally:
        proxy.stop()
