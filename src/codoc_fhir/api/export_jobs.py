"""Compatibility names: the export job logic lives in `codoc_fhir.bulk` (no HTTP there).

`bulk.export_jobs` holds the job rows and their thread, `bulk.export` the rows an export
reads and its NDJSON writer. Kept so that older imports (`$everything`) keep working.
"""

from __future__ import annotations

from codoc_fhir.bulk.export import (
    CHUNK_ROWS,
    exported_kinds,
    rows_after,
    rows_clause,
    run_export,
    start_export,
)
from codoc_fhir.bulk.export_jobs import (
    ACCEPTED,
    COMPLETE,
    FAILED,
    RUNNING,
    Cancelled,
    ExportRequest,
    check_alive,
    create_job,
    delete_job,
    fetch_job,
    job_directory,
    job_outputs,
    join_exports,
    private_directory,
    run_job,
    start_job,
)

__all__ = [
    "ACCEPTED",
    "CHUNK_ROWS",
    "COMPLETE",
    "FAILED",
    "RUNNING",
    "Cancelled",
    "ExportRequest",
    "check_alive",
    "create_job",
    "delete_job",
    "exported_kinds",
    "fetch_job",
    "job_directory",
    "job_outputs",
    "join_exports",
    "private_directory",
    "rows_after",
    "rows_clause",
    "run_export",
    "run_job",
    "start_export",
    "start_job",
]
