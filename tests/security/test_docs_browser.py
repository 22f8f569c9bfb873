"""/docs in real headless Chromium with no network but loopback: the Swagger UI renders
from the server's own assets and lists the Procedure operations, on both path forms."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.security.servers import running_server

ROOT = Path(__file__).resolve().parents[2]
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-extensions",
    # Every host name fails to resolve: only the loopback address is reachable.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    "--virtual-time-budget=15000",
    "--dump-dom",
]


@pytest.fixture(scope="module")
def chromium() -> str:
    if shutil.which("chromium") is None:
        subprocess.run(["bash", str(ROOT / "scripts" / "ensure-chromium.sh")], check=False)
    path = shutil.which("chromium")
    if path is None:
        pytest.skip("chromium is not installed and apt-get could not install it")
    return path


def test_docs_page_loads_no_external_asset(client):
    html = client.get("/docs").text
    assert re.findall(r"(?:src|href)=[\"']https?://", html) == []
    assert client.get("/docs/static/swagger-ui-bundle.js").status_code == 200


def test_docs_list_procedure_operations_offline(chromium, database_url, tmp_path):
    env = {"CODOC_DATABASE_URL": database_url, "CODOC_RATE_LIMIT_ANONYMOUS": "off"}
    with running_server(tmp_path, env) as url:
        result = subprocess.run(
            [chromium, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", f"{url}/docs"],
            capture_output=True,
            text=True,
            timeout=120,
        )
    dom = result.stdout
    assert "swagger-ui" in dom, result.stderr[-2000:]
    assert 'id="operations-tag-Procedure"' in dom or "operations-tag-Procedure" in dom
    assert "/v4.3.0/procedure/" in dom
    assert "Create a Procedure" in dom
    # the standard FHIR paths the README uses are listed too, each operation once per form
    for path in ("/v4.3.0/procedure/{ident}/", "/v4.3.0/Procedure/{ident}", "/v4.3.0/Procedure"):
        assert f'data-path="{path}"' in dom, path
    assert dom.count('data-path="/v4.3.0/Procedure/{ident}"') == 4  # GET PUT PATCH DELETE
    assert "Everything about one patient" in dom  # $everything is not described as a search
    assert "Add a concept" in dom
