"""FHIR Bulk Data `$export` (system and Patient level) and `Patient/{id}/$everything`.

The asynchronous pattern: a kick-off (`Prefer: respond-async`) answers 202 with a
Content-Location to poll; the status URL answers 202 (X-Progress) while the export runs,
then 200 with the manifest; DELETE on it cancels the job (or forgets a finished one).
Files are served, streamed, under `$export-file/{job}/{Type}.ndjson`. Jobs live in the
`fhir_export_job` table (bulk/export_jobs.py; bulk/export.py writes the files); only the
caller who started a job (same token subject, same patient) sees it, anyone else gets 404.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, Response

from codoc_fhir.api.auth import Forbidden
from codoc_fhir.api.routes import BASE, _add, base_url, check_format
from codoc_fhir.api.visibility import Visibility
from codoc_fhir.bulk import export_jobs as jobs
from codoc_fhir.bulk.export import start_export
from codoc_fhir.fhir.dates import format_instant, parse_datetime
from codoc_fhir.fhir.errors import Invalid, NotFound, operation_outcome
from codoc_fhir.fhir.references import key_number
from codoc_fhir.fhir.responses import fhir_response
from codoc_fhir.search.clauses import patient_column

NDJSON = "application/fhir+ndjson"
NDJSON_FORMATS = (NDJSON, "application/ndjson", "ndjson")
KICKOFF_PARAMS = {"_type", "_since", "_outputFormat", "_format", "_pretty"}
STATUS_PATH = "$export-status"
FILE_PATH = "$export-file"


# --- shared by $export and $everything --------------------------------------------------


def compartment_types(registry: Any) -> list[str]:
    """Types with patient data (the Patient compartment), Patient first."""
    return [
        fhir_type.name
        for fhir_type in registry
        if any(patient_column(kind) is not None for kind in fhir_type.kinds)
    ]


def requested_types(pairs: list[tuple[str, str]], candidates: list[str]) -> list[str] | None:
    """The `_type` list (repeated or comma separated); None when absent. 400 for a type
    that is unknown or outside `candidates`."""
    names = [name.strip() for key, value in pairs if key == "_type" for name in value.split(",")]
    names = [name for name in names if name]
    if not names:
        return None
    for name in names:
        if name not in candidates:
            raise Invalid(f"Resource type {name!r} cannot be exported here", expression=["_type"])
    return list(dict.fromkeys(names))


def since_of(pairs: list[tuple[str, str]]) -> Any:
    """`_since` as an aware datetime (None when absent); 400 when not an instant."""
    values = [value for key, value in pairs if key == "_since"]
    if len(values) > 1:
        raise Invalid("_since may be given once", expression=["_since"])
    return parse_datetime(values[0], "_since") if values else None


def readable_types(
    request: Request, candidates: list[str], explicit: bool
) -> tuple[list[str], int | None]:
    """The types the caller may read, and the patient it is confined to (None: any).

    An explicitly requested type the token cannot read is 403; without `_type`, such types
    are left out. A restriction to a patient on any type confines the whole answer.
    """
    patient = getattr(request.state, "patient_restriction", None)
    visibility = Visibility.of(request)
    if visibility.principal is None:
        return candidates, patient
    allowed = []
    for name in candidates:
        try:
            confined = visibility.patient(name)
        except Forbidden:
            if explicit:
                raise
            continue
        allowed.append(name)
        patient = confined if confined is not None else patient
    if not allowed:
        raise Forbidden("The token's scopes allow reading none of the requested types")
    return allowed, patient


def owner_of(request: Request) -> str:
    principal = getattr(request.state, "principal", None)
    return principal.subject if principal is not None else "anonymous"


def _base(request: Request) -> str:

    return base_url(request)


# --- kick-off ---------------------------------------------------------------------------


def _check_kickoff(request: Request, pairs: list[tuple[str, str]]) -> None:

    check_format(request)
    if "respond-async" not in request.headers.get("prefer", "").lower():
        raise Invalid("$export is asynchronous: send the header Prefer: respond-async")
    for key, value in pairs:
        if key not in KICKOFF_PARAMS:
            message = f"$export parameter {key!r} is not supported"
            raise Invalid(message, expression=[key], code="not-supported")
        if key == "_outputFormat" and value not in NDJSON_FORMATS:
            raise Invalid(
                f"_outputFormat {value!r} is not supported: use {NDJSON}",
                expression=["_outputFormat"],
            )


def _kickoff(server: Any, patient_level: bool, group_level: bool = False) -> Any:
    """System, Patient or (group_level) Group/{id} export kick-off."""

    async def kickoff(request: Request) -> Response:
        pairs = list(request.query_params.multi_items())
        group = None
        if group_level:
            group = await run_in_threadpool(_group_number, server, request)
        _check_kickoff(request, pairs)
        registry = server.registry
        candidates = compartment_types(registry) if patient_level else list(registry.types)
        explicit = requested_types(pairs, candidates)
        types, patient = readable_types(request, explicit or candidates, explicit is not None)
        export = jobs.ExportRequest(
            types=types,
            since=since_of(pairs),
            patient=patient,
            patient_level=patient_level,
            owner=owner_of(request),
            request_url=str(request.url),
            group=group,
        )
        num = await run_in_threadpool(server.run_write, lambda conn: jobs.create_job(conn, export))
        start_export(server.engine, registry, server.settings.export_dir, num, export)
        location = f"{_base(request)}/{STATUS_PATH}/{num}"
        return Response(status_code=202, headers={"Content-Location": location})

    return kickoff


def _group_number(server: Any, request: Request) -> int:
    """The Group a Group-level kick-off names (404 when there is none)."""
    ident = request.path_params["group_id"]
    kind, num = server.registry.types["Group"].resolve_id(ident)
    server.run_read(lambda conn: kind.fetch_row(conn, num))
    return int(num)


# --- status, cancel, files ---------------------------------------------------------------


def _own_job(server: Any, request: Request, job_id: str) -> Any:
    """The caller's job row; 404 when there is none or it belongs to someone else."""
    num = key_number(job_id)
    num = -1 if num is None else num
    job = server.run_read(lambda conn: jobs.fetch_job(conn, num))
    principal = getattr(request.state, "principal", None)
    mine = job is not None and job["owner"] == owner_of(request)
    if mine and job["patient_restriction"] is not None and principal is not None:
        mine = principal.patient == str(job["patient_restriction"])
    if not mine:
        raise NotFound(f"There is no export job {job_id}")
    return job


def manifest(server: Any, request: Request, job: Any) -> dict[str, Any]:
    """The completion manifest: where each type's file is and how many resources it holds."""
    files = f"{_base(request)}/{FILE_PATH}/{job['export_num']}"
    return {
        "transactionTime": format_instant(job["start_date"]),
        "request": job["request_url"],
        "requiresAccessToken": server.settings.auth_enabled,
        "output": [
            {"type": item["type"], "url": f"{files}/{item['file']}", "count": item["count"]}
            for item in jobs.job_outputs(job)
        ],
        "error": [],
    }


def _status(server: Any) -> Any:
    async def status(request: Request, job_id: str) -> Response:
        job = await run_in_threadpool(_own_job, server, request, job_id)
        if job["status"] == jobs.COMPLETE:
            return Response(
                orjson.dumps(manifest(server, request, job)),
                media_type="application/json",
            )
        if job["status"] == jobs.FAILED:
            outcome = operation_outcome("exception", f"The export failed: {job['error_text']}")
            return fhir_response(request, outcome, 500)
        total = len((job["resource_types"] or "").split(","))
        done = len(jobs.job_outputs(job))
        progress = f"{job['status']}: {done} of {total} resource types written"
        return Response(status_code=202, headers={"X-Progress": progress, "Retry-After": "1"})

    return status


def _cancel(server: Any) -> Any:
    async def cancel(request: Request, job_id: str) -> Response:
        def work(conn: Any) -> None:
            job = _own_job(server, request, job_id)
            jobs.delete_job(conn, server.settings.export_dir, job)

        await run_in_threadpool(server.run_write, work)
        return Response(status_code=202)

    return cancel


def _file(server: Any) -> Any:
    async def export_file(request: Request, job_id: str, name: str) -> Response:
        job = await run_in_threadpool(_own_job, server, request, job_id)
        listed = {item["file"] for item in jobs.job_outputs(job)}
        if job["status"] != jobs.COMPLETE or name not in listed:
            raise NotFound(f"Export job {job_id} has no file {name!r}")
        path = jobs.job_directory(server.settings.export_dir, job) / name
        if not path.is_file():
            raise NotFound(f"The file {name!r} of export job {job_id} is no longer available")
        return FileResponse(path, media_type=NDJSON)

    return export_file


# --- routes -----------------------------------------------------------------------------

OPERATION_DOC = {
    "summary": "FHIR Bulk Data export kick-off (send Prefer: respond-async)",
    "responses": {"202": {"description": "Accepted: poll the Content-Location URL"}},
}


def _add_plain(app: FastAPI, path: str, endpoint: Any, method: str, summary: str) -> None:
    """Status, cancel and file routes: any authenticated caller reaches them (the auth
    middleware checks the token); the handler then answers only the job's owner."""
    for variant in (path, path + "/"):
        app.add_api_route(
            variant,
            endpoint,
            methods=[method],
            tags=["Bulk Data"],
            include_in_schema=variant == path,  # standard FHIR paths: no trailing slash
            name=f"{method.lower()} {variant}",
            summary=summary,
        )


def install_export_routes(app: FastAPI, server: Any) -> None:
    """`$export` and its status/file URLs: before `/{Type}/{ident}`."""
    _add(app, f"{BASE}/$export", _kickoff(server, False), "GET", "Bulk Data", True, OPERATION_DOC)
    patient_export = _kickoff(server, True)
    for name in ("patient", "Patient"):
        _add(app, f"{BASE}/{name}/$export", patient_export, "GET", "Patient", True, OPERATION_DOC)
    group_export = _kickoff(server, True, group_level=True)
    for name in ("group", "Group"):
        path = f"{BASE}/{name}/{{group_id}}/$export"
        _add(app, path, group_export, "GET", "Group", True, OPERATION_DOC)
    status_path = f"{BASE}/{STATUS_PATH}/{{job_id}}"
    _add_plain(app, status_path, _status(server), "GET", "Poll an export job (202 until done)")
    _add_plain(app, status_path, _cancel(server), "DELETE", "Cancel an export job")
    file_path = f"{BASE}/{FILE_PATH}/{{job_id}}/{{name}}"
    _add_plain(app, file_path, _file(server), "GET", "Download one NDJSON file of an export")
