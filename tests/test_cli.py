"""The `codoc-fhir` command as a newcomer meets it: help, version, errors in one line, the
demo loaded next to other data, serving under a proxy's root path."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest

from codoc_fhir import __version__
from codoc_fhir.cli import build_parser
from codoc_fhir.demo import DEMO, load_demo
from tests.conftest import POSTGRES_ADMIN_URL, empty_tables, make_settings
from tests.security.servers import CLI, running_server

COMMANDS = ["serve", "migrate", "demo", "import", "access-log"]


def run_cli(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLI), *args],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_help_lists_every_command(tmp_path):
    done = run_cli("--help", cwd=tmp_path)
    assert done.returncode == 0
    for command in COMMANDS:
        assert f"    {command}" in done.stdout
    assert "--version" in done.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, tmp_path):
    done = run_cli(command, "--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: codoc-fhir {command}")
    assert done.stderr == ""


def test_every_option_is_described_and_serve_shows_its_defaults(tmp_path):
    parser = build_parser()
    commands = next(action for action in parser._actions if action.choices)  # the sub-commands
    for name, sub in commands.choices.items():  # type: ignore[union-attr]
        for action in sub._actions:
            assert action.help, f"{name} {action.option_strings or action.dest} has no help"
    serve = " ".join(run_cli("serve", "--help", cwd=tmp_path, CODOC_PORT="8123").stdout.split())
    for option, default in (
        ("--host", "127.0.0.1"),
        ("--port", "8123"),  # CODOC_PORT
        ("--workers", "1"),
        ("--log-level", "info"),
        ("--root-path", "none"),
    ):
        assert option in serve
        assert f"default {default}" in serve, option


def test_version(tmp_path):
    done = run_cli("--version", cwd=tmp_path)
    assert done.returncode == 0
    assert done.stdout.strip() == f"codoc-fhir {__version__} (FHIR 4.3.0)"


def test_serve_on_a_missing_postgresql_database_says_so_in_one_line(tmp_path):
    name = f"codoc_missing_{uuid.uuid4().hex[:8]}"
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    done = run_cli("serve", "--port", "1", cwd=tmp_path, CODOC_DATABASE_URL=url)
    if "does not exist" not in done.stderr:
        pytest.skip(f"no PostgreSQL server to ask: {done.stderr.strip()[:200]}")
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1, done.stderr  # one line, no traceback
    assert done.stderr.startswith(f'codoc-fhir: database "{name}" does not exist')
    assert "Traceback" not in done.stderr


def test_unreachable_database_is_one_line_without_the_password(tmp_path):
    url = "postgresql+psycopg://someone:s3cret@127.0.0.1:1/codoc"
    done = run_cli("migrate", cwd=tmp_path, CODOC_DATABASE_URL=url)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("codoc-fhir: cannot use the database postgresql+psycopg://")
    assert "s3cret" not in done.stderr


def test_demo_loads_into_a_database_with_other_patients(client, database_url, engine):
    created = client.post(
        "/v4.3.0/Patient",
        json={
            "resourceType": "Patient",
            "identifier": [{"value": "OTHER1"}],
            "gender": "male",
            "birthDate": "1970-01-01",
        },
    )
    assert created.status_code == 201, created.text
    settings = make_settings(database_url)
    assert load_demo(settings) == f"demo data loaded: {len(DEMO)} resources"
    # the demo's references point at the demo's own resources, not at ids 1, 2...
    claire = client.get("/v4.3.0/Patient?identifier=IPP123456").json()["entry"][0]["resource"]
    assert claire["id"] == "2"
    acts = client.get(f"/v4.3.0/Procedure?subject=Patient/{claire['id']}").json()
    assert acts["total"] == 1
    assert client.get("/v4.3.0/Procedure?subject=Patient/1").json()["total"] == 0
    assert load_demo(settings) == "demo data already present: nothing loaded"
    assert client.get("/v4.3.0/Patient?_summary=count").json()["total"] == 3
    empty_tables(engine)


@pytest.mark.parametrize("workers", [1, 2])  # uvicorn alone, gunicorn with uvicorn workers
def test_serve_under_a_root_path_keeps_it_in_links(database_url, engine, tmp_path, workers):
    empty_tables(engine)
    env = {"CODOC_DATABASE_URL": database_url, "CODOC_ROOT_PATH": "/fhir"}
    body = {
        "resourceType": "Organization",
        "identifier": [{"value": "HOSP001"}],
        "name": "Paris University Hospital",
        "type": [{"coding": [{"code": "prov"}]}],
    }
    with running_server(tmp_path, env, workers) as url:  # the proxy strips /fhir from paths
        created = httpx.post(f"{url}/v4.3.0/Organization", json=body)
        bundle = httpx.get(f"{url}/v4.3.0/Organization").json()
        docs = httpx.get(f"{url}/docs").text
        metadata = httpx.get(f"{url}/v4.3.0/metadata")
    empty_tables(engine)
    assert created.status_code == 201, created.text
    assert created.headers["location"] == f"{url}/fhir/v4.3.0/Organization/site-1"
    assert bundle["entry"][0]["fullUrl"] == f"{url}/fhir/v4.3.0/Organization/site-1"
    assert "/fhir/openapi.json" in docs
    assert metadata.status_code == 200


def test_access_log_before_any_migration_says_what_to_run(tmp_path):
    done = run_cli("access-log", cwd=tmp_path, CODOC_DATABASE_URL=f"sqlite:///{tmp_path}/new.db")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.rstrip().endswith("has no warehouse tables yet: run `codoc-fhir migrate`")
