"""Background jobs of the `fhir_export_job` table: their rows, their thread, cancellation.

A job row is the single source of truth: any worker process answers a status poll from
it. A job runs in a daemon thread of the process that accepted it; its `produce` writes
files in the job's own directory under CODOC_EXPORT_DIR and answers what it wrote.
`$export` (bulk/export.py) and the phenotype extraction are such jobs. A DELETE (cancel)
removes the row; the producer notices at its next `check_alive`, the thread stops and
removes its files. No HTTP here: api/bulk_export.py serves the kick-off, status and files.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, select
from sqlalchemy.engine import RowMapping

from codoc_fhir.fhir.dates import utc_now
from codoc_fhir.warehouse.schema import fhir_export_job

ACCEPTED, RUNNING, COMPLETE, FAILED = "accepted", "in-progress", "complete", "error"
log = logging.getLogger("codoc_fhir.export")
_threads: set[threading.Thread] = set()


@dataclass(frozen=True)
class ExportRequest:
    """What a kick-off asked for, once validated and narrowed by the caller's scopes."""

    types: Sequence[str]
    since: datetime | None
    patient: int | None  # a patient-scoped caller's patient: only its rows are exported
    patient_level: bool  # Patient/$export: only patient compartment kinds
    owner: str
    request_url: str
    group: int | None = None  # Group/{id}/$export: only the cohort's members' rows


# --- job rows ---------------------------------------------------------------------------


def create_job(conn: Connection, request: ExportRequest) -> int:
    """Record an accepted job; its number names it in the status and file URLs."""
    values = {
        "status": ACCEPTED,
        "request_url": request.request_url[:4000],
        "resource_types": ",".join(request.types),
        "since_date": request.since,
        "patient_restriction": request.patient,
        "owner": request.owner,
        "start_date": utc_now(),
    }
    query = fhir_export_job.insert().values(**values).returning(fhir_export_job.c.export_num)
    return int(conn.execute(query).scalar_one())


def fetch_job(conn: Connection, num: int) -> RowMapping | None:
    query = select(fhir_export_job).where(fhir_export_job.c.export_num == num)
    return conn.execute(query).mappings().first()


def _update_job(engine: Engine, num: int, **values: Any) -> bool:
    """Change a job row; False when it is gone (cancelled)."""
    with engine.begin() as conn:
        where = fhir_export_job.c.export_num == num
        return bool(conn.execute(fhir_export_job.update().where(where).values(**values)).rowcount)


def job_outputs(job: RowMapping) -> list[dict[str, Any]]:
    """The files written so far: [{type, file, count}]."""
    return list(orjson.loads(job["output_json"])) if job["output_json"] else []


def job_directory(root: str | Path, job: RowMapping) -> Path:
    """The job's own directory: its number and start instant, so that a job number reused
    by another database never meets an older job's files."""
    start = job["start_date"]
    start = start.replace(tzinfo=UTC) if start.tzinfo is None else start.astimezone(UTC)
    return Path(root) / f"job-{job['export_num']}-{start:%Y%m%d%H%M%S%f}"


def delete_job(conn: Connection, root: str | Path, job: RowMapping) -> None:
    """Cancel or forget a job: its row and its files (a running thread stops on its own)."""
    conn.execute(fhir_export_job.delete().where(fhir_export_job.c.export_num == job["export_num"]))
    shutil.rmtree(job_directory(root, job), ignore_errors=True)


# --- the runner -----------------------------------------------------------------------


def start_job(
    engine: Engine,
    root: str,
    num: int,
    produce: Callable[[Path], list[dict[str, Any]]],
    name: str,
) -> None:
    """Run job `num` in a daemon thread: `produce(directory)` writes its files and answers
    the outputs ([{type, file, count}]); other operations than $export (phenotype
    extraction) reuse the same rows, status URL, cancel and file routes."""
    thread = threading.Thread(
        target=run_job, args=(engine, root, num, produce), name=name, daemon=True
    )
    _threads.add(thread)
    thread.start()


def join_exports(timeout: float = 30.0) -> None:
    """Wait for the export threads this process started (shutdown, tests)."""
    for thread in list(_threads):
        thread.join(timeout)
        if not thread.is_alive():
            _threads.discard(thread)


class Cancelled(Exception):
    """The job row disappeared: a DELETE cancelled the export."""


def check_alive(engine: Engine, num: int, outputs: list[dict[str, Any]] | None = None) -> None:
    """Raise Cancelled when the job row is gone; record `outputs` so far when given."""
    if outputs is None:
        with engine.connect() as conn:
            alive = fetch_job(conn, num) is not None
    else:
        alive = _update_job(engine, num, output_json=orjson.dumps(outputs).decode())
    if not alive:
        raise Cancelled


def run_job(
    engine: Engine, root: str, num: int, produce: Callable[[Path], list[dict[str, Any]]]
) -> None:
    """Run `produce` in the job's fresh directory, recording its state; on failure the job
    says why, on cancellation its files are removed."""
    directory: Path | None = None
    try:
        if not _update_job(engine, num, status=RUNNING):
            raise Cancelled
        with engine.connect() as conn:
            job = fetch_job(conn, num)
        if job is None:
            raise Cancelled
        directory = job_directory(root, job)
        shutil.rmtree(directory, ignore_errors=True)
        private_directory(directory)
        outputs = produce(directory)
        done = _update_job(
            engine,
            num,
            status=COMPLETE,
            output_json=orjson.dumps(outputs).decode(),
            end_date=utc_now(),
        )
        if not done:
            raise Cancelled
    except Cancelled:
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)
    except Exception as error:  # the job must say it failed, whatever went wrong
        log.exception("job %s failed", num)
        failed = _update_job(
            engine, num, status=FAILED, error_text=str(error)[:4000], end_date=utc_now()
        )
        if not failed and directory is not None:
            shutil.rmtree(directory, ignore_errors=True)


def private_directory(directory: Path) -> None:
    """Create `directory` (and the export root) readable by the server's user only: export
    files hold whole patient records."""
    directory.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.mkdir(mode=0o700)
    os.chmod(directory, 0o700)
