"""The floor: the least a read by id can cost with this driver, on this machine.

A plain ASGI function (no framework) answering `GET /v4.3.0/Procedure/{id}`: one joined
SQL query (the fact, its concept, its department and unit names: the statement the API's
Procedure read sends) on a psycopg 3 async pool, the Procedure rendered by hand into the
JSON the API answers (the bench data has no kept elements), orjson, the API's headers.
No auth, no access log, no rate limit, no validation of anything. bench/run.py serves it
like the API (gunicorn with uvicorn workers) and reports the API's throughput as a share
of it, measured in the same run, alternated with the API so the machine's drift cancels.

`POST /v4.3.0/Procedure` is the floor of a create: the bench's Procedure body (a CCAM code,
a subject, a date, a department performer) written as one autocommitted statement, the fact
row with its concept looked up inside the INSERT and its first history version (the body
as posted, where the API stores the rendered answer), the fact returned joined to its names
and rendered as the read renders it (status `unknown`, as the API answers it). No check
that the patient or the code exist beyond the foreign key and the join, no token rows, no
kept elements: the least a create can cost.

    FLOOR_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/codoc_bench uvicorn floor:app
"""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime
from email.utils import format_datetime as http_date
from typing import Any

import orjson
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

PREFIX = "/v4.3.0/Procedure/"
THESAURUS = os.environ.get("THESAURUS_CODE_PROCEDURE", "Acte")
SQL = """
SELECT dwh_data.*, concept.concept_code, concept.concept_str,
       department.department_str, unit.unit_str
FROM dwh_data
JOIN dwh_thesaurus_data AS concept ON concept.thesaurus_data_num = dwh_data.thesaurus_data_num
LEFT JOIN dwh_thesaurus_department AS department
       ON department.department_num = dwh_data.department_num
LEFT JOIN dwh_thesaurus_unit AS unit ON unit.unit_num = dwh_data.unit_num
WHERE dwh_data.thesaurus_code = %(thesaurus)s AND dwh_data.data_num = %(num)s
"""
CREATE_SQL = """
WITH fact AS (
    INSERT INTO dwh_data (patient_num, thesaurus_data_num, thesaurus_code, document_date,
                          start_date, department_num, update_date)
    SELECT %(patient)s, concept.thesaurus_data_num, concept.thesaurus_code, %(start)s,
           %(start)s, %(department)s, now()
    FROM dwh_thesaurus_data AS concept
    WHERE concept.thesaurus_code = %(thesaurus)s AND concept.concept_code = %(code)s
    RETURNING *
), version AS (
    INSERT INTO dwh_resource_history (fhir_type, fhir_id, table_name, table_key, patient_num,
                                      version_id, method, history_date, resource_json)
    SELECT 'Procedure', fact.data_num::text, 'dwh_data', fact.data_num, fact.patient_num,
           1, 'POST', fact.update_date, %(body)s
    FROM fact
)
SELECT fact.*, concept.concept_code, concept.concept_str,
       department.department_str, NULL AS unit_str
FROM fact
JOIN dwh_thesaurus_data AS concept ON concept.thesaurus_data_num = fact.thesaurus_data_num
LEFT JOIN dwh_thesaurus_department AS department
       ON department.department_num = fact.department_num
"""
CONTENT_TYPE = (b"content-type", b"application/fhir+json; charset=utf-8")
NOT_FOUND = orjson.dumps({"resourceType": "OperationOutcome", "issue": [{"code": "not-found"}]})

_pool: AsyncConnectionPool | None = None
_opening = asyncio.Lock()


def _conninfo() -> str:
    url = os.environ.get("FLOOR_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/codoc_bench")
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


async def pool() -> AsyncConnectionPool:
    """The worker's pool, opened on the first request (after gunicorn forked the worker)."""
    global _pool
    async with _opening:
        if _pool is None:
            opened: AsyncConnectionPool = AsyncConnectionPool(
                _conninfo(),
                min_size=1,
                max_size=10,
                kwargs={"autocommit": True, "row_factory": dict_row},
                open=False,
            )
            await opened.open()
            _pool = opened
    return _pool


def instant(value: datetime) -> str:
    utc = value.astimezone(UTC)
    return utc.isoformat(timespec="microseconds" if utc.microsecond else "seconds").replace(
        "+00:00", "Z"
    )


def performer(level: str, num: int, name: str | None) -> dict[str, Any]:
    actor: dict[str, Any] = {"reference": f"Organization/{level}-{num}"}
    if name:
        actor["display"] = name
    coding = {"system": "urn:codoc:fhir:organization-level", "code": level}
    return {"function": {"coding": [{**coding, "display": level.title()}]}, "actor": actor}


def procedure(row: dict[str, Any]) -> dict[str, Any]:
    """The JSON the API answers for a Procedure row without kept elements."""
    ident = str(row["data_num"])
    identifiers = [{"use": "official", "value": ident}]
    if row["id_data_source"]:
        identifiers.append({"value": row["id_data_source"]})  # the source id: no `use`
    coding = {"system": f"urn:codoc:fhir:codesystem:{row['thesaurus_code']}"}
    coding |= {"code": row["concept_code"], "display": row["concept_str"]}
    answer: dict[str, Any] = {
        "resourceType": "Procedure",
        "id": ident,
        "identifier": identifiers,
        "status": "unknown",
        "code": {"coding": [coding]},
        "subject": {"reference": f"Patient/{row['patient_num']}"},
    }
    if row["stay_num"] is not None:
        answer["encounter"] = {"reference": f"Encounter/{row['stay_num']}"}
    answer["performedDateTime"] = instant(row["start_date"])
    performers = [
        performer(level, row[f"{level}_num"], row[f"{level}_str"])
        for level in ("department", "unit")
        if row[f"{level}_num"] is not None
    ]
    if performers:
        answer["performer"] = performers
    answer["meta"] = {
        "versionId": str(row["row_version"]),
        "lastUpdated": instant(row["update_date"]),
    }
    return answer


async def lifespan(receive: Any, send: Any) -> None:
    """Nothing to start (the pool opens on the first request); close the pool at the end."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if _pool is not None:
                await _pool.close()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def body_of(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def create_values(body: bytes) -> dict[str, Any]:
    """The statement's values from the bench's Procedure body."""
    posted = orjson.loads(body)
    return {
        "patient": int(posted["subject"]["reference"].removeprefix("Patient/")),
        "thesaurus": THESAURUS,
        "code": posted["code"]["coding"][0]["code"],
        "start": datetime.fromisoformat(posted["performedDateTime"]),
        "department": int(posted["performer"][0]["actor"]["reference"].rsplit("-", 1)[1]),
        "body": body.decode(),
    }


async def create(receive: Any, send: Any) -> None:
    values = create_values(await body_of(receive))
    async with (await pool()).connection() as conn:
        cursor = await conn.execute(CREATE_SQL, values)
        row = await cursor.fetchone()
    if row is None:  # no such code
        await send({"type": "http.response.start", "status": 400, "headers": [CONTENT_TYPE]})
        await send({"type": "http.response.body", "body": NOT_FOUND})
        return
    answer = procedure(row)
    location = f"/v4.3.0/Procedure/{answer['id']}".encode()
    await send_answer(send, 201, answer, row, [(b"location", location)])


async def send_answer(
    send: Any, status: int, answer: dict[str, Any], row: dict[str, Any], extra: list[Any]
) -> None:
    body = orjson.dumps(answer)
    headers = [
        (b"etag", f'W/"{row["row_version"]}"'.encode()),
        (b"last-modified", http_date(row["update_date"].astimezone(UTC), usegmt=True).encode()),
        *extra,
        (b"content-length", str(len(body)).encode()),
        CONTENT_TYPE,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    if scope["method"] == "POST" and scope["path"] == PREFIX.rstrip("/"):
        await create(receive, send)
        return
    ident = scope["path"].removeprefix(PREFIX)
    row = None
    if scope["path"].startswith(PREFIX) and ident.isdigit():
        async with (await pool()).connection() as conn:
            cursor = await conn.execute(SQL, {"thesaurus": THESAURUS, "num": int(ident)})
            row = await cursor.fetchone()
    if row is None:
        await send({"type": "http.response.start", "status": 404, "headers": [CONTENT_TYPE]})
        await send({"type": "http.response.body", "body": NOT_FOUND})
        return
    await send_answer(send, 200, procedure(row), row, [])
