"""The fast create (api/fast_create.py) answers exactly what the generic create route does.

Two apps on the same database, one with the fast paths (the default) and one with
CODOC_FAST_READ=false, are sent the same creates by the same callers. What a client sees
must be identical whichever path answered: the status, the headers it uses, and the body
(the new id and instant aside, which differ between two creates). Refusals of every kind
(401, 403, 404, 400, 415, a missing reference) and the requests the fast create hands on
(Prefer, If-None-Exist, a query string) are part of the comparison.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, select

from codoc_fhir.demo import load_demo
from codoc_fhir.warehouse.schema import dwh_data, dwh_patient
from tests.conftest import make_settings
from tests.factories import count_rows
from tests.security.tokens import AUTH_ENV, bearer, hs256

HEADERS = ("content-type", "etag", "location", "last-modified", "www-authenticate")
JSON = {"Content-Type": "application/fhir+json"}


def procedure(patient: int, **changes: Any) -> dict[str, Any]:
    return {
        "resourceType": "Procedure",
        "status": "completed",
        "code": {"coding": [{"system": "urn:codoc:fhir:codesystem:Acte", "code": "ZZQX001"}]},
        "subject": {"reference": f"Patient/{patient}"},
        "performedDateTime": "2024-03-05T10:30:00Z",
        "note": [{"text": "kept beside the row"}],
        **changes,
    }


def seen(response: Any) -> dict[str, Any]:
    """What a client sees of a create, the parts that differ between two creates masked."""
    headers = {name: response.headers.get(name) for name in HEADERS}
    if headers["location"]:
        headers["location"] = re.sub(r"/[^/]+$", "/{id}", headers["location"])
    if headers["etag"] is not None:
        headers["last-modified"] = headers["last-modified"] is not None
    body: Any = response.content
    if body and response.headers.get("content-type", "").startswith("application/"):
        body = orjson.loads(body)
        if body.get("resourceType") != "OperationOutcome":
            new_id = body.pop("id", None)  # and the official identifier that repeats it
            body["identifier"] = [i for i in body.get("identifier", []) if i["value"] != new_id]
            body.get("meta", {}).pop("lastUpdated", None)
    return {"status": response.status_code, "headers": headers, "body": body}


@pytest.fixture
def both(make_client: Any, database_url: str, engine: Engine) -> dict[str, Any]:
    """The fast and the generic app (auth on) over the demo data; its two patients."""
    fast = make_client(**AUTH_ENV)
    generic = make_client(**AUTH_ENV, CODOC_FAST_READ="false")
    load_demo(make_settings(database_url))
    with engine.connect() as conn:
        patients = conn.scalars(select(dwh_patient.c.patient_num).order_by("patient_num")).all()
    return {"fast": fast, "generic": generic, "patients": patients}


def cases(patients: list[int]) -> list[tuple[str, str, dict[str, str], bytes]]:
    """(what, path, headers, body) of every create compared."""
    first, other = patients[0], patients[-1]
    system = {**JSON, **bearer(hs256("system/*.*"))}
    own = {**JSON, **bearer(hs256("patient/*.*", patient=str(first)))}
    stranger = {**JSON, **bearer(hs256("patient/*.*", patient=str(other)))}
    plain_body = {**system, "Content-Type": "application/json"}
    conditional = {**system, "If-None-Exist": "subject=Patient/999999"}
    valid = orjson.dumps(procedure(first))
    return [
        ("standard path", "/v4.3.0/Procedure", system, valid),
        ("Codoc path", "/v4.3.0/procedure/", system, valid),
        ("Codoc path, no slash", "/v4.3.0/procedure", system, valid),
        ("plain JSON", "/v4.3.0/Procedure", {**system, "Accept": "application/json"}, valid),
        ("application/json body", "/v4.3.0/Procedure", plain_body, valid),
        ("own patient", "/v4.3.0/Procedure", own, valid),
        ("another patient", "/v4.3.0/Procedure", stranger, valid),
        ("read-only scope", "/v4.3.0/Procedure", {**JSON, **bearer(hs256("system/*.read"))}, valid),
        ("no token", "/v4.3.0/Procedure", JSON, valid),
        ("missing patient", "/v4.3.0/Procedure", system, orjson.dumps(procedure(999999))),
        ("lax JSON type", "/v4.3.0/Procedure", system, orjson.dumps(procedure(first, status=1))),
        ("another type's body", "/v4.3.0/Observation", system, valid),
        ("invalid JSON", "/v4.3.0/Procedure", system, b'{"resourceType": '),
        ("empty body", "/v4.3.0/Procedure", system, b""),
        ("text/plain", "/v4.3.0/Procedure", {**system, "Content-Type": "text/plain"}, valid),
        ("no such route", "/v4.3.0/Procedure//", system, valid),
        ("an id", "/v4.3.0/Procedure/12", system, valid),
        ("Prefer minimal", "/v4.3.0/Procedure", {**system, "Prefer": "return=minimal"}, valid),
        ("If-None-Exist", "/v4.3.0/Procedure", conditional, valid),
        ("a query string", "/v4.3.0/Procedure?subject=Patient/999999", system, valid),
        ("POST search", "/v4.3.0/Procedure/_search", system, b""),
    ]  # fmt: skip


def test_fast_create_answers_what_the_generic_create_answers(both: dict[str, Any]) -> None:
    fast, generic = both["fast"], both["generic"]
    statuses = set()
    for what, path, headers, body in cases(both["patients"]):
        fast_answer = seen(fast.post(path, content=body, headers=headers))
        assert fast_answer == seen(generic.post(path, content=body, headers=headers)), what
        statuses.add(fast_answer["status"])
    assert {200, 201, 400, 401, 403, 404, 405, 415} <= statuses or {
        201,
        400,
        401,
        403,
        415,
    } <= statuses
    assert fast.app.state.fast_create.served >= 6
    assert fast.app.state.fast_create.refused >= 5  # answered, not handed on
    assert generic.app.state.fast_create is None


def test_a_refused_fast_create_stores_nothing(both: dict[str, Any], engine: Engine) -> None:
    """A create the interaction refuses was rolled back: nothing of it stays."""
    fast = both["fast"]
    system = {**JSON, **bearer(hs256("system/*.*"))}
    before = count_rows(engine, dwh_data)
    body = orjson.dumps(procedure(both["patients"][0], performer=[
        {"actor": {"reference": "Organization/department-999"}}
    ]))  # fmt: skip
    response = fast.post("/v4.3.0/Procedure", content=body, headers=system)
    assert response.status_code == 400, response.text
    assert "Department with ID 999" in response.json()["issue"][0]["diagnostics"]
    assert count_rows(engine, dwh_data) == before
    created = fast.post("/v4.3.0/Procedure", content=orjson.dumps(procedure(both["patients"][0])),
                        headers=system)  # fmt: skip
    assert created.status_code == 201
    assert count_rows(engine, dwh_data) == before + 1
    path = "/v4.3.0" + created.headers["location"].split("/v4.3.0", 1)[1]
    read = fast.get(path, headers=system)
    assert read.json() == created.json()
