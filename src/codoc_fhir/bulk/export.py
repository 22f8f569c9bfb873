"""Bulk Data `$export`: which rows a job exports, and the writer of its NDJSON files.

One `<Type>.ndjson` file per resource type, a resource a line, exactly what a read of it
answers. Each kind (table) is read by one streaming query in primary key order (a
server-side cursor on PostgreSQL), CHUNK_ROWS rows at a time: a chunk is rendered with the
kind's batch loads of related rows (a few queries per chunk, never one per row), each
resource straight to orjson bytes (`stream_lines` says why), and written to a large file
buffer. Memory stays bounded by one chunk.
Between chunks the job row is checked: a DELETE (cancel) stops the export within a chunk.
No HTTP here: api/bulk_export.py validates the kick-off and serves status and files.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

import orjson
from sqlalchemy import Connection, Engine, and_, select, true
from sqlalchemy.engine import RowMapping

from codoc_fhir.bulk.export_jobs import ExportRequest, check_alive, run_job, start_job
from codoc_fhir.resources.base import Resource
from codoc_fhir.search.clauses import patient_column, restriction
from codoc_fhir.warehouse.schema import dwh_cohort_patient

CHUNK_ROWS = 2000  # rows fetched, rendered and written at a time
WRITE_BUFFER = 1 << 20  # bytes: a few large writes per file rather than one per chunk
FILE_MODE = 0o600  # export files hold whole patient records: the server's user only


# --- rows the export reads ------------------------------------------------------------


def exported_kinds(registry: Any, fhir_type: str, patient_level: bool) -> list[Resource]:
    """The kinds (tables) of a type an export reads: compartment kinds for Patient level."""
    kinds = registry.types[fhir_type].kinds
    return [kind for kind in kinds if not patient_level or patient_column(kind) is not None]


def rows_clause(
    kind: Resource,
    patient: int | None,
    compartment: int | None,
    since: datetime | None,
    group: int | None = None,
) -> Any:
    """The kind's scope, the caller's patient, a compartment, a cohort's members and
    `_since` (lastUpdated)."""
    allowed = restriction(kind, patient, compartment)
    clauses = [allowed if allowed is not None else true()]
    column = patient_column(kind)
    if group is not None and column is not None:  # a group export reads compartment kinds
        members = select(dwh_cohort_patient.c.patient_num).where(
            dwh_cohort_patient.c.cohort_num == group
        )
        clauses.append(column.in_(members))
    scope = kind.scope()
    if scope is not None:
        clauses.append(scope)
    if since is not None:
        clauses.append(kind.table.c.update_date >= since)
    return and_(*clauses)


def rows_after(
    conn: Connection, kind: Resource, clause: Any, after: int, limit: int
) -> list[RowMapping]:
    """Up to `limit` rows matching `clause` with a key above `after`, in key order
    ($everything's pages)."""
    query = kind.base_query().where(clause, kind.key > after).order_by(kind.key).limit(limit)
    return list(conn.execute(query).mappings())


# --- the job ----------------------------------------------------------------------------


def start_export(
    engine: Engine, registry: Any, root: str, num: int, request: ExportRequest
) -> None:
    """Run the export of job `num` in a background daemon thread of this process."""

    def produce(directory: Path) -> list[dict[str, Any]]:
        return write_files(engine, registry, directory, num, request)

    start_job(engine, root, num, produce, f"codoc-export-{num}")


def run_export(engine: Engine, registry: Any, root: str, num: int, request: ExportRequest) -> None:
    """Run the export of job `num` here (bench, tests): its files, then its state."""
    run_job(
        engine, root, num, lambda directory: write_files(engine, registry, directory, num, request)
    )


def write_files(
    engine: Engine, registry: Any, directory: Path, num: int, request: ExportRequest
) -> list[dict[str, Any]]:
    """Every requested type's file in `directory`; the outputs ([{type, file, count}]).
    A type without a matching resource leaves no file."""
    outputs: list[dict[str, Any]] = []
    for fhir_type in request.types:
        path = directory / f"{fhir_type}.ndjson"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        with os.fdopen(descriptor, "wb", buffering=WRITE_BUFFER) as out:
            count = write_type(engine, registry, out, num, fhir_type, request)
        if count:
            outputs.append({"type": fhir_type, "file": path.name, "count": count})
        else:
            path.unlink()
        check_alive(engine, num, outputs)
    return outputs


def write_type(
    engine: Engine, registry: Any, out: BinaryIO, num: int, fhir_type: str, request: ExportRequest
) -> int:
    """Write the type's resources, kind after kind; how many were written."""
    count = 0
    for kind in exported_kinds(registry, fhir_type, request.patient_level):
        clause = rows_clause(kind, request.patient, None, request.since, request.group)
        for lines, written in stream_lines(engine, kind, clause, num):
            out.write(lines)
            count += written
    return count


def ndjson(resources: Iterable[dict[str, Any]]) -> bytes:
    """The resources as NDJSON lines: orjson's compact form, one line each."""
    dumps, newline = orjson.dumps, orjson.OPT_APPEND_NEWLINE
    return b"".join([dumps(resource, option=newline) for resource in resources])


def stream_lines(
    engine: Engine, kind: Resource, clause: Any, num: int
) -> Iterator[tuple[bytes, int]]:
    """The kind's matching resources in key order as NDJSON, CHUNK_ROWS at a time (the
    lines, their number), from one streaming query; Cancelled (from check_alive) once the
    job row is gone.

    Each resource is serialised as soon as it is rendered (`read_each`), so its dicts are
    freed by their reference counts at once. Rendering the whole chunk first kept some
    40,000 dicts alive together: they were promoted to the collector's oldest generation,
    whose full collections traverse every object of the process (its modules, the R4B
    models), and that cost a third of the export's time."""
    query = kind.base_query().where(clause).order_by(kind.key)
    with engine.connect() as conn:
        streaming = conn.execution_options(stream_results=True, yield_per=CHUNK_ROWS)
        for rows in streaming.execute(query).mappings().partitions():
            check_alive(engine, num)
            yield ndjson(kind.read_each(conn, rows)), len(rows)
