"""Processes the benchmark starts and measures: the API server, the ceiling app, wrk."""

from __future__ import annotations

import json
import os
import platform
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
VENV_BIN = Path(sys.executable).parent
LUA = BENCH_DIR / "scenario.lua"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve_command(app: str, port: int, workers: int, pythonpath: str | None) -> list[str]:
    """uvicorn for one worker, gunicorn with uvicorn workers for more (as `codoc-fhir serve`)."""
    if workers > 1:
        command = [str(VENV_BIN / "gunicorn"), app, "--worker-class"]
        command += ["uvicorn.workers.UvicornWorker", "--workers", str(workers)]
        command += ["--bind", f"127.0.0.1:{port}"]
        return command + (["--pythonpath", pythonpath] if pythonpath else [])
    command = [str(VENV_BIN / "uvicorn"), app, "--port", str(port), "--log-level", "warning"]
    return command + (["--app-dir", pythonpath] if pythonpath else [])


# The production path of issue 9: rate limiting on (the shared-memory counter) with a limit
# no benchmark reaches, and the access log on (the default).
HIGH_LIMIT = "1000000000/hour"
API_ENV = {
    "CODOC_RATE_LIMIT_ANONYMOUS": HIGH_LIMIT,
    "CODOC_RATE_LIMIT_AUTHENTICATED": HIGH_LIMIT,
    "CODOC_RATE_LIMIT_STORE": "local",
    "CODOC_ACCESS_LOG": "true",
}


@contextmanager
def api_server(
    database_url: str, workers: int, log: Path, extra_env: dict[str, str] | None = None
) -> Iterator[str]:
    """`codoc-fhir serve` on a free loopback port (API_ENV, then `extra_env`); yields its
    base URL."""
    port = free_port()
    command = [str(VENV_BIN / "codoc-fhir"), "serve", "--port", str(port)]
    command += ["--workers", str(workers), "--log-level", "warning"]
    env = {**os.environ, "CODOC_DATABASE_URL": database_url, **API_ENV, **(extra_env or {})}
    with _process(command, env, log, f"http://127.0.0.1:{port}", "/v4.3.0/metadata") as url:
        yield url


@contextmanager
def floor_server(database_url: str, workers: int, log: Path, probe_id: int) -> Iterator[str]:
    """The floor app (bench/floor.py) on the database, served like the API."""
    port = free_port()
    command = _serve_command("floor:app", port, workers, str(BENCH_DIR))
    env = {**os.environ, "FLOOR_DATABASE_URL": database_url}
    with _process(
        command, env, log, f"http://127.0.0.1:{port}", f"/v4.3.0/Procedure/{probe_id}"
    ) as url:
        yield url


@contextmanager
def ceiling_server(workers: int, log: Path) -> Iterator[str]:
    """The ceiling app (bench/ceiling.py) served the same way."""
    port = free_port()
    command = _serve_command("ceiling:app", port, workers, str(BENCH_DIR))
    with _process(
        command, dict(os.environ), log, f"http://127.0.0.1:{port}", "/v4.3.0/Procedure/1"
    ) as url:
        yield url


@contextmanager
def _process(
    command: Sequence[str], env: dict[str, str], log: Path, url: str, probe: str
) -> Iterator[str]:
    with log.open("w") as output:
        process = subprocess.Popen(
            command, env=env, stdout=output, stderr=subprocess.STDOUT, cwd=tempfile.gettempdir()
        )
        try:
            _wait_ready(process, url + probe, log)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_ready(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early, see {log}:\n{log.read_text()[-2000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"server not ready after 60 s, see {log}")


def run_wrk(base_url: str, lines: Sequence[str], seconds: int, connections: int) -> dict[str, Any]:
    """Replay `lines` ("METHOD PATH [BODY]") with wrk; throughput and latency in ms."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as handle:
        handle.write("\n".join(lines) + "\n")
    command = ["wrk", "-t", "1", "-c", str(connections), "-d", f"{seconds}s"]
    command += ["--timeout", "10s", "-s", str(LUA), base_url]
    env = {**os.environ, "BENCH_REQUESTS": handle.name}
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    finally:
        os.unlink(handle.name)
    line = next(x for x in done.stdout.splitlines() if x.startswith("BENCH_JSON "))
    raw = json.loads(line.removeprefix("BENCH_JSON "))
    latency = {name: round(value / 1000, 2) for name, value in raw["latency_us"].items()}
    seconds_run = raw["duration_us"] / 1e6
    return {
        "connections": connections,
        "seconds": round(seconds_run, 1),
        "requests": raw["requests"],
        "throughput_rps": round(raw["requests"] / seconds_run, 1),
        "latency_ms": latency,
        "errors": {
            "non_2xx": raw["non_2xx"],
            "socket": raw["socket_errors"],
            "timeouts": raw["timeouts"],
        },
    }


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    memory_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(memory_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "wrk": wrk_version.split("[")[0].strip(),
        "load_average_at_start": [round(value, 2) for value in os.getloadavg()],
    }


def fresh_database(admin_url: str, name: str) -> str:
    """A new, empty PostgreSQL database `name` (dropped first if it exists); its URL."""
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return admin_url.rsplit("/", 1)[0] + f"/{name}"
