"""`$extract-phenotypes` on DocumentReference (CONTRACT section 11).

- `POST /DocumentReference/{id}/$extract-phenotypes`: extract one document now, answer a
  `collection` Bundle of the phenotype Observations stored.
- `POST /DocumentReference/$extract-phenotypes`: every document (or a `patient`'s, or
  those changed `_since`) as an asynchronous job: 202 and a Content-Location to poll. It
  is a Bulk Data job (same table, status URL, cancel and file routes as `$export`); its
  output is an `Observation.ndjson` of the phenotypes stored.

Parameters come as a FHIR `Parameters` body or in the query string: `thesaurus`
(default THESAURUS_CODE_PHENOTYPE), `patient` (a Patient reference), `_since` (instant).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from fastapi import FastAPI
from sqlalchemy import Connection, Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from codoc_fhir.api.auth import Forbidden, check_patient
from codoc_fhir.api.bulk_export import STATUS_PATH, owner_of
from codoc_fhir.api.routes import BASE, _add, base_url
from codoc_fhir.bulk import export_jobs as jobs
from codoc_fhir.fhir.dates import parse_datetime
from codoc_fhir.fhir.errors import Invalid
from codoc_fhir.fhir.references import key_number
from codoc_fhir.fhir.responses import fhir_response
from codoc_fhir.fhir.validation import parse_json_body
from codoc_fhir.research import extraction
from codoc_fhir.resources.observation_phenotype import ObservationPhenotype

OPERATION = "$extract-phenotypes"
PARAMETERS = ("thesaurus", "patient", "_since")
VALUE_FIELDS = (
    "valueString",
    "valueCode",
    "valueUri",
    "valueDateTime",
    "valueInstant",
    "valueDate",
)


# --- parameters -------------------------------------------------------------------------


def _parameter_value(parameter: dict[str, Any]) -> str:
    name = parameter.get("name")
    if "valueReference" in parameter:
        return str((parameter["valueReference"] or {}).get("reference") or "")
    for field in VALUE_FIELDS:
        if isinstance(parameter.get(field), str):
            return str(parameter[field])
    raise Invalid(f"Parameter {name!r} needs a string, code or reference value")


async def read_parameters(request: Request, allowed: tuple[str, ...]) -> dict[str, str]:
    """The operation's parameters from the query string and an optional Parameters body."""
    found: dict[str, str] = {}
    for key, value in request.query_params.multi_items():
        if key in ("_format", "_pretty"):
            continue
        found[key] = value
    raw = await request.body()
    if raw.strip():
        body = parse_json_body(raw)
        if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
            raise Invalid("The body of $extract-phenotypes must be a Parameters resource")
        for parameter in body.get("parameter") or []:
            if not isinstance(parameter, dict) or not isinstance(parameter.get("name"), str):
                raise Invalid("Each parameter needs a name", expression=["parameter"])
            found[parameter["name"]] = _parameter_value(parameter)
    for name in found:
        if name not in allowed:
            message = f"$extract-phenotypes parameter {name!r} is not supported here"
            raise Invalid(message, expression=[name], code="not-supported")
    return found


def _patient_number(reference: str) -> int:
    kind, _, ident = reference.rstrip("/").rpartition("/")
    num = key_number(ident)
    if num is None or kind.rsplit("/", 1)[-1].lower() not in ("", "patient"):
        raise Invalid(f"patient must be a Patient reference, not {reference!r}")
    return num


def _phenotypes(server: Any, thesaurus: str) -> ObservationPhenotype:
    """The phenotype kind answering rows of `thesaurus`."""
    settings = server.settings.model_copy(update={"thesaurus_phenotype": thesaurus})
    return ObservationPhenotype(settings)


def read_rows(conn: Connection, kind: ObservationPhenotype, nums: list[int]) -> list[dict]:
    if not nums:
        return []
    rows = conn.execute(kind.base_query().where(kind.key.in_(nums)).order_by(kind.key))
    return kind.read_many(conn, list(rows.mappings()))


# --- one document -----------------------------------------------------------------------


def _one_document(server: Any) -> Any:
    async def extract_one(request: Request, ident: str) -> Response:
        params = await read_parameters(request, ("thesaurus",))
        thesaurus = params.get("thesaurus") or server.settings.thesaurus_phenotype
        documents = server.registry.types["DocumentReference"]
        language = server.settings.text_language

        def work(conn: Connection) -> list[dict[str, Any]]:
            kind, num = documents.resolve_id(ident)
            check_patient(request, conn, kind, num, write=True)
            nums = extraction.extract_document(conn, num, thesaurus, language)
            return read_rows(conn, _phenotypes(server, thesaurus), nums)

        resources = await run_in_threadpool(server.run_write, work)
        root = base_url(request)
        bundle = {
            "resourceType": "Bundle",
            "type": "collection",
            "total": len(resources),
            "entry": [
                {"fullUrl": f"{root}/Observation/{item['id']}", "resource": item}
                for item in resources
            ],
        }
        return fhir_response(request, bundle)

    return extract_one


# --- many documents: a job --------------------------------------------------------------


def _job_producer(
    engine: Engine, kind: ObservationPhenotype, num: int, selection: Any, language: str
) -> Any:
    """Extract the selection batch by batch, appending the stored Observations to the
    job's Observation.ndjson; stops between batches when the job is cancelled."""

    def produce(directory: Path) -> list[dict[str, Any]]:
        path = directory / "Observation.ndjson"
        count, outputs = 0, []
        with path.open("wb") as out:
            for _done, nums in extraction.extract_batches(engine, selection, language):
                with engine.connect() as conn:
                    resources = read_rows(conn, kind, nums)
                out.write(b"".join(orjson.dumps(item) + b"\n" for item in resources))
                count += len(resources)
                outputs = [{"type": "Observation", "file": path.name, "count": count}]
                jobs.check_alive(engine, num, outputs)
        if not count:
            path.unlink()
            return []
        return outputs

    return produce


def _many_documents(server: Any) -> Any:
    async def extract_many(request: Request) -> Response:
        params = await read_parameters(request, PARAMETERS)
        thesaurus = params.get("thesaurus") or server.settings.thesaurus_phenotype
        restriction = getattr(request.state, "patient_restriction", None)
        patient = _patient_number(params["patient"]) if params.get("patient") else None
        if restriction is not None:
            if patient is not None and str(patient) != str(restriction):
                raise Forbidden("A patient-scoped token can only extract its own documents")
            patient = int(restriction)
        since = parse_datetime(params["_since"], "_since") if params.get("_since") else None
        selection = extraction.Selection(thesaurus, patient, since)
        server.run_read(lambda conn: extraction.check_thesaurus(conn, thesaurus))
        request_info = jobs.ExportRequest(
            types=["Observation"],
            since=since,
            patient=restriction,
            patient_level=False,
            owner=owner_of(request),
            request_url=str(request.url),
        )
        num = await run_in_threadpool(
            server.run_write, lambda conn: jobs.create_job(conn, request_info)
        )
        produce = _job_producer(
            server.engine,
            _phenotypes(server, thesaurus),
            num,
            selection,
            server.settings.text_language,
        )
        jobs.start_job(server.engine, server.settings.export_dir, num, produce, f"extract-{num}")
        location = f"{base_url(request)}/{STATUS_PATH}/{num}"
        return Response(status_code=202, headers={"Content-Location": location})

    return extract_many


# --- routes -----------------------------------------------------------------------------

OPERATION_DOC = {
    "summary": "Built-in phenotype extraction (CONTRACT section 11)",
    "responses": {"200": {"description": "A collection Bundle"}, "202": {"description": "A job"}},
}


def install_extraction_routes(app: FastAPI, server: Any) -> None:
    """Both operations on the Codoc and standard paths: before `/{Type}/{ident}`."""
    for name, show in (("documentreference", True), ("DocumentReference", False)):
        _add(
            app,
            f"{BASE}/{name}/{{ident}}/{OPERATION}",
            _one_document(server),
            "POST",
            "DocumentReference",
            show,
            OPERATION_DOC,
        )
        _add(
            app,
            f"{BASE}/{name}/{OPERATION}",
            _many_documents(server),
            "POST",
            "DocumentReference",
            show,
            OPERATION_DOC,
        )
