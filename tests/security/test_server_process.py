"""The HTTP server itself (CONTRACT 8), on a real `codoc-fhir serve` process: bounded request
heads, slow clients, forwarded headers, and what reaches its log."""

from __future__ import annotations

import base64
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import select

from codoc_fhir.warehouse.db import make_engine
from codoc_fhir.warehouse.schema import fhir_access_log
from tests.security.servers import running_server
from tests.security.tokens import AUTH_ENV, bearer, hs256

BASE = "/v4.3.0"
TIMEOUT = 1.0  # CODOC_REQUEST_TIMEOUT of the server under test


@pytest.fixture(scope="module")
def served(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    workdir = tmp_path_factory.mktemp("served")
    env = {
        **AUTH_ENV,
        "CODOC_DATABASE_URL": database_url,
        "CODOC_REQUEST_TIMEOUT": str(TIMEOUT),
        "CODOC_RATE_LIMIT_ANONYMOUS": "10/hour",
        "CODOC_RATE_LIMIT_AUTHENTICATED": "off",
    }
    with running_server(workdir, env) as url:
        yield url, workdir


def _address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 80


def _exchange(url: str, chunks: list[bytes], pause: float = 0.0, wait: float = 5.0) -> bytes:
    """Send `chunks` on a raw connection, `pause` s apart; everything answered until close."""
    with socket.create_connection(_address(url), timeout=wait) as sock:
        answer = b""
        try:
            for chunk in chunks:
                sock.sendall(chunk)
                time.sleep(pause)
            while data := sock.recv(65536):
                answer += data
        except (BrokenPipeError, ConnectionResetError):
            answer += _drain(sock)
        return answer


def _drain(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except OSError:
        return b""


def _log(workdir: Path) -> str:
    return "\n".join(path.read_text("utf-8", "replace") for path in workdir.glob("server-*.log"))


# --- request heads -------------------------------------------------------------------------


def test_a_request_line_over_16_kib_is_414(served):
    url, _ = served
    response = httpx.get(f"{url}{BASE}/metadata?pad={'x' * 17_000}")
    assert response.status_code == 414
    assert response.json()["resourceType"] == "OperationOutcome"
    assert httpx.get(f"{url}{BASE}/metadata?pad={'x' * 15_000}").status_code == 200


def test_headers_over_16_kib_are_431(served):
    url, _ = served
    headers = {f"X-Pad-{n}": "y" * 1000 for n in range(17)}
    response = httpx.get(f"{url}{BASE}/metadata", headers=headers)
    assert response.status_code == 431
    headers = {f"X-Pad-{n}": "y" * 1000 for n in range(14)}
    assert httpx.get(f"{url}{BASE}/metadata", headers=headers).status_code == 200


# --- slow clients --------------------------------------------------------------------------


def test_headers_sent_slowly_time_out_with_408(served):
    url, _ = served
    head = [b"GET /v4.3.0/metadata HTTP/1.1\r\n", b"Host: 127.0.0.1\r\n"]
    trickle = head + [f"X-Slow-{n}: 1\r\n".encode() for n in range(10)]
    started = time.monotonic()
    answer = _exchange(url, trickle, pause=0.3)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"OperationOutcome" in answer
    assert time.monotonic() - started < TIMEOUT + 3


def test_a_body_that_stops_arriving_times_out_with_408(served):
    url, _ = served
    head = (
        "POST /v4.3.0/Patient HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {hs256()}\r\n"
        "Content-Type: application/fhir+json\r\nContent-Length: 1000\r\n\r\n"
    )
    started = time.monotonic()
    answer = _exchange(url, [head.encode() + b'{"resourceType": "Pat'], wait=TIMEOUT + 5)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert TIMEOUT - 0.2 < time.monotonic() - started < TIMEOUT + 3


def test_an_idle_connection_is_closed(served):
    url, _ = served
    started = time.monotonic()
    assert _exchange(url, [], wait=TIMEOUT + 5) == b""
    assert time.monotonic() - started < TIMEOUT + 3


# --- proxies and hosts ---------------------------------------------------------------------


def test_forwarded_for_from_loopback_does_not_rotate_the_identity(served):
    """Failed logins count against the address; X-Forwarded-For cannot change it."""
    url, _ = served

    def attempt(n: int) -> httpx.Response:
        headers = {"X-Forwarded-For": f"10.0.{n}.1", **bearer("not-a-token")}
        return httpx.get(f"{url}{BASE}/Patient", headers=headers)

    first = attempt(0)
    assert first.status_code == 401
    remaining = int(first.headers["x-ratelimit-remaining"])
    statuses = [attempt(n).status_code for n in range(1, remaining + 3)]
    assert statuses == [401] * remaining + [429, 429]


def test_a_foreign_host_is_refused(served):
    url, _ = served
    token = bearer(hs256())
    assert (
        httpx.get(f"{url}{BASE}/Patient", headers={**token, "Host": "evil.example"}).status_code
        == 400
    )
    response = httpx.get(f"{url}{BASE}/Patient", headers=token)
    assert response.status_code == 200
    assert all(link["url"].startswith(url) for link in response.json()["link"])


# --- logs ----------------------------------------------------------------------------------


def test_no_token_body_value_or_search_value_in_any_log(served, database_url):
    url, workdir = served
    marker = f"Marker{uuid.uuid4().hex[:10]}"
    token = hs256()
    headers = bearer(token)
    for number in range(3):
        body = {
            "resourceType": "Patient",
            "identifier": [{"use": "usual", "value": f"IPP-{marker}-{number % 2}"}],
            "name": [{"family": f"{marker}{number}"}],
            "gender": "female",
            "birthDate": "1901-02-03",
        }
        created = httpx.post(f"{url}{BASE}/Patient", json=body, headers=headers)
        assert created.status_code == (201 if number < 2 else 409), created.text  # a duplicate
    too_long = {"resourceType": "Patient", "name": [{"family": marker * 40}]}
    httpx.post(f"{url}{BASE}/Patient", json=too_long, headers=headers)
    metadata = f"{url}{BASE}/metadata?access_token={token}"
    assert httpx.get(metadata, headers=headers).status_code == 200
    query = "birthdate=1901-02-03&_sort=family&_count=1"  # the boundary: a marked family
    first = httpx.get(f"{url}{BASE}/Patient?{query}", headers=headers)
    nxt = next(link["url"] for link in first.json()["link"] if link["relation"] == "next")
    assert httpx.get(nxt, headers=headers).status_code == 200
    time.sleep(1.5)  # the access log is written in the background
    server_log = _log(workdir)
    engine = make_engine(database_url)
    with engine.connect() as conn:
        urls = [row.url for row in conn.execute(select(fhir_access_log.c.url))]
    engine.dispose()
    cursors = [logged.split("_cursor=")[1].split("&")[0] for logged in urls if "_cursor=" in logged]
    assert cursors
    decoded = [base64.urlsafe_b64decode(c + "=" * (-len(c) % 4)).decode("latin-1") for c in cursors]
    for log in (server_log, "\n".join(urls), "\n".join(decoded)):
        assert token not in log
        assert token.split(".")[1] not in log  # nor the claims part alone
        assert marker not in log


def test_cursors_survive_a_restart(database_url, tmp_path):
    env = {"CODOC_DATABASE_URL": database_url}
    body = {
        "resourceType": "Patient",
        "identifier": [{"use": "usual", "value": f"IPP-{uuid.uuid4().hex[:8]}"}],
        "name": [{"family": "Restart"}],
        "gender": "male",
        "birthDate": "1980-01-01",
    }
    with running_server(tmp_path, env) as first:
        for _ in range(2):
            body["identifier"][0]["value"] = f"IPP-{uuid.uuid4().hex[:8]}"
            assert httpx.post(f"{first}{BASE}/Patient", json=body).status_code == 201
        bundle = httpx.get(f"{first}{BASE}/Patient?family=Restart&_count=1").json()
        nxt = next(link["url"] for link in bundle["link"] if link["relation"] == "next")
    with running_server(tmp_path, env) as second:
        answer = httpx.get(second + nxt.removeprefix(first))
        assert answer.status_code == 200, answer.text
        assert answer.json()["entry"][0]["resource"]["id"] != bundle["entry"][0]["resource"]["id"]


def test_gunicorn_workers_bound_heads_and_share_cursors(database_url, tmp_path):
    if not database_url.startswith("postgresql"):
        pytest.skip("production mode (serve --workers 2) is exercised on PostgreSQL")
    env = {"CODOC_DATABASE_URL": database_url, "CODOC_REQUEST_TIMEOUT": str(TIMEOUT)}
    with running_server(tmp_path, env, workers=2) as url:
        for family in ("Worker", "Workers"):
            body = {
                "resourceType": "Patient",
                "identifier": [{"use": "usual", "value": f"IPP-{uuid.uuid4().hex[:8]}"}],
                "name": [{"family": family}],
                "gender": "other",
                "birthDate": "1990-01-01",
            }
            assert httpx.post(f"{url}{BASE}/Patient", json=body).status_code == 201
        bundle = httpx.get(f"{url}{BASE}/Patient?family=Worker&_sort=family&_count=1").json()
        nxt = next(link["url"] for link in bundle["link"] if link["relation"] == "next")
        assert {httpx.get(nxt).status_code for _ in range(10)} == {200}  # either worker
        assert httpx.get(f"{url}{BASE}/metadata?pad={'x' * 17_000}").status_code == 414
        slow = [b"GET /v4.3.0/metadata HTTP/1.1\r\n"] + [b"X-Slow: 1\r\n"] * 10
        assert _exchange(url, slow, pause=0.3).startswith(b"HTTP/1.1 408")
        forged = {"X-Forwarded-Host": "evil.example", "Host": "evil.example"}
        assert httpx.get(f"{url}{BASE}/metadata", headers=forged).status_code == 400
        assert "GET /v4.3.0" not in _log(tmp_path)  # no access log of the server's own
