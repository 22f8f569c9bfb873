"""The stack's ceiling: FastAPI + uvicorn answering one pre-serialised Procedure.

Served exactly as `codoc-fhir serve` serves the API (uvicorn, or gunicorn with uvicorn
workers), it shows the most this stack can do on this machine with no database and no
mapping work; bench/run.py reports the API's figures as a ratio of it.
"""

from __future__ import annotations

import orjson
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

PROCEDURE = {
    "resourceType": "Procedure",
    "id": "5",
    "identifier": [{"use": "official", "value": "5"}, {"use": "usual", "value": "SRC000000005"}],
    "status": "unknown",
    "code": {
        "coding": [
            {
                "system": "urn:codoc:fhir:codesystem:Acte",
                "code": "GOON287",
                "display": "Act GOON287",
            }
        ]
    },
    "subject": {"reference": "Patient/1"},
    "encounter": {"reference": "Encounter/2"},
    "performedDateTime": "2017-09-14T13:18:00Z",
    "performer": [
        {
            "function": {
                "coding": [
                    {
                        "system": "urn:codoc:fhir:organization-level",
                        "code": "department",
                        "display": "Department",
                    }
                ]
            },
            "actor": {"reference": "Organization/department-14", "display": "Department 14"},
        }
    ],
    "meta": {"versionId": "1", "lastUpdated": "2025-06-01T12:00:00Z"},
}
BODY = orjson.dumps(PROCEDURE)
HEADERS = {"ETag": 'W/"1"', "Last-Modified": "Sun, 01 Jun 2025 12:00:00 GMT"}
TRANSACTION_ENTRY = {
    "fullUrl": "http://127.0.0.1/v4.3.0/Procedure/5",
    "resource": PROCEDURE,
    "response": {
        "status": "201 Created",
        "location": "Procedure/5/_history/1",
        "etag": 'W/"1"',
        "lastModified": "2025-06-01T12:00:00Z",
    },
}

app = FastAPI(title="codoc-fhir bench ceiling")


@app.get("/v4.3.0/Procedure/{ident}")
async def read(ident: str) -> Response:
    """The same pre-serialised resource for any id."""
    return Response(BODY, media_type="application/fhir+json", headers=HEADERS)


@app.post("/v4.3.0/Procedure")
async def create(request: Request) -> Response:
    """The create's ceiling: the body read, the same pre-serialised resource answered."""
    await request.body()
    headers = {**HEADERS, "Location": "/v4.3.0/Procedure/5"}
    return Response(BODY, status_code=201, media_type="application/fhir+json", headers=headers)


@app.post("/v4.3.0")
async def transaction(request: Request) -> Response:
    """A transaction's ceiling: the Bundle read and parsed, a pre-built response of as many
    entries (each the pre-serialised Procedure, as the API answers every created entry)."""
    entries = len(orjson.loads(await request.body()).get("entry") or [])
    answer = {"resourceType": "Bundle", "type": "transaction-response"}
    body = orjson.dumps(answer | {"entry": [TRANSACTION_ENTRY] * entries})
    return Response(body, media_type="application/fhir+json")
