"""A real HTTP server for the off-the-shelf FHIR clients (fhirpy, fhirclient).

The clients speak HTTP through `requests`, so the TestClient will not do: uvicorn serves the
app in a background thread on a free loopback port, against the test database of each
backend. Every test starts from empty tables, identities reset.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from sqlalchemy import Engine

from codoc_fhir.app import create_app
from tests.conftest import empty_tables, make_settings


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def live_server(database_url: str) -> Iterator[str]:
    """The API served over HTTP on 127.0.0.1; yields the FHIR base URL."""
    app = create_app(make_settings(database_url))
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="fhir-live-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the live server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/v4.3.0"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def base_url(live_server: str, engine: Engine) -> str:
    """The live server's base URL, on empty tables."""
    empty_tables(engine)
    return live_server
