"""Hostile input: every attack answers 4xx, stores nothing, and no error leaks internals."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from codoc_fhir.app import create_app
from codoc_fhir.warehouse.schema import dwh_data, dwh_patient
from tests.conftest import make_settings
from tests.factories import seed_procedure_context
from tests.fhir_client import FhirTestClient

PROCEDURE = {
    "resourceType": "Procedure",
    "status": "completed",
    "code": {"coding": [{"code": "COLO001", "display": "Colonoscopy"}]},
    "subject": {"reference": "Patient/1"},
    "performedDateTime": "2024-01-15T14:00:00Z",
}
JSON = {"Content-Type": "application/fhir+json"}


def counts(engine) -> tuple[int, int]:
    with engine.connect() as conn:
        return tuple(  # type: ignore[return-value]
            conn.execute(select(func.count()).select_from(table)).scalar_one()
            for table in (dwh_data, dwh_patient)
        )


@pytest.fixture
def seeded(client, engine):
    seed_procedure_context(engine)
    assert client.post("/v4.3.0/procedure/", json=PROCEDURE).status_code == 201
    return client


def assert_refused(response, engine, before, statuses=range(400, 500)) -> None:
    assert response.status_code in statuses, response.text
    if response.content:
        assert response.json()["resourceType"] == "OperationOutcome"
    assert counts(engine) == before


def test_huge_body_is_413(make_client, engine):
    seed_procedure_context(engine)
    client = make_client(CODOC_MAX_BODY_BYTES="1000")
    before = counts(engine)
    big = dict(PROCEDURE, code={"text": "x" * 5000})
    response = client.post("/v4.3.0/procedure/", json=big)
    assert_refused(response, engine, before, [413])

    def chunks():
        for _ in range(10):
            yield b" " * 500

    streamed = client.post("/v4.3.0/procedure/", content=chunks(), headers=JSON)
    assert_refused(streamed, engine, before, [413])


def test_deeply_nested_json(seeded, engine):
    before = counts(engine)
    deep = "[" * 100_000 + "]" * 100_000
    response = seeded.post("/v4.3.0/procedure/", content=deep, headers=JSON)
    assert_refused(response, engine, before)
    depth = 2000
    nested = '{"url": "x", "extension": [' * depth + '{"url": "x"}' + "]}" * depth
    text = json.dumps(PROCEDURE)[:-1] + f', "extension": [{nested}]}}'
    response = seeded.post("/v4.3.0/procedure/", content=text, headers=JSON)
    assert response.status_code < 500
    assert counts(engine)[1] == before[1]


@pytest.mark.parametrize(
    "path",
    [
        "/v4.3.0/Procedure/1' OR '1'='1",
        "/v4.3.0/Procedure/1;DROP TABLE dwh_data",
        "/v4.3.0/Patient/1%20UNION%20SELECT%20*%20FROM%20dwh_patient",
        "/v4.3.0/Procedure/..%2F..%2Fetc%2Fpasswd",
        "/v4.3.0/Procedure/%2e%2e/%2e%2e/etc/passwd",
        "/v4.3.0/Procedure/99999999999999999999999999",
        "/v4.3.0/Procedure/-1",
    ],
)
def test_sql_and_traversal_in_ids(seeded, engine, path):
    before = counts(engine)
    for method in ("GET", "DELETE", "PUT"):
        response = seeded.request(method, path, json=PROCEDURE if method == "PUT" else None)
        assert_refused(response, engine, before)
        assert "root:" not in response.text


@pytest.mark.parametrize(
    "query",
    [
        "subject=Patient/1' OR 1=1--",
        "_id=1;DELETE FROM dwh_data",
        "code=%27%3B%20DROP%20TABLE%20dwh_data%3B--",
        "_sort=(SELECT 1)",
    ],
)
def test_sql_in_search_values(seeded, engine, query):
    before = counts(engine)
    response = seeded.get(f"/v4.3.0/Procedure?{query}")
    assert response.status_code < 500
    if response.status_code == 200:
        assert not response.json().get("entry")
    assert counts(engine) == before


@pytest.mark.parametrize(
    "content, content_type",
    [
        (b'{"resourceType": "Procedure", "status": "\xff\xfe\xfd"}', "application/fhir+json"),
        (b"\xc3\x28\xa0\xa1", "application/json"),
        (b"<Procedure xmlns='http://hl7.org/fhir'/>", "application/fhir+xml"),
        (b"resourceType=Procedure", "application/x-www-form-urlencoded"),
        (b'{"resourceType": "Procedure"}', "text/plain"),
        (b'{"resourceType": "Procedure"}', ""),
        (b"", "application/fhir+json"),
        (b"null", "application/fhir+json"),
        (b'"just a string"', "application/fhir+json"),
        (b'{"resourceType": "Procedure", "status": NaN}', "application/fhir+json"),
    ],
)
def test_bad_bodies_and_content_types(seeded, engine, content, content_type):
    before = counts(engine)
    headers = {"Content-Type": content_type} if content_type else {}
    for method, path in (("POST", "/v4.3.0/procedure/"), ("PUT", "/v4.3.0/Procedure/1")):
        response = seeded.request(method, path, content=content, headers=headers)
        assert_refused(response, engine, before)


def test_header_injection_is_not_reflected(seeded, engine):
    response = seeded.get(
        "/v4.3.0/Procedure/1%0d%0aSet-Cookie:%20owned=1",
        headers={"Accept": "application/fhir+json\r\nX-Injected: 1".replace("\r\n", " ")},
    )
    assert response.status_code == 404
    assert "set-cookie" not in response.headers
    created = seeded.post(
        "/v4.3.0/procedure/", json=PROCEDURE, headers={"Host": "evil.example%0d%0aX-A: 1"}
    )
    assert "\r" not in created.headers.get("location", "")
    assert "\n" not in created.headers.get("location", "")


def test_unexpected_failure_reveals_no_internals(make_client, database_url, engine, monkeypatch):
    from sqlalchemy.exc import OperationalError

    from codoc_fhir.resources.procedure import Procedure

    def explode(self, conn, num):
        raise OperationalError(
            "SELECT secret_column FROM dwh_data WHERE 1", {}, Exception("/srv/codoc/db.py")
        )

    seed_procedure_context(engine)
    monkeypatch.setattr(Procedure, "read", explode)
    client = FhirTestClient(create_app(make_settings(database_url)), raise_server_exceptions=False)
    response = client.get("/v4.3.0/Procedure/1")
    assert response.status_code == 500
    issue = response.json()["issue"][0]
    assert issue["code"] == "exception"
    for leak in ("SELECT", "secret_column", "/srv", "Traceback", ".py", "dwh_data"):
        assert leak not in response.text


def test_cors_preflight_and_exposed_headers(make_client, engine):
    seed_procedure_context(engine)
    client = make_client(CODOC_CORS_ORIGINS="https://app.example.org, https://other.example.org")
    preflight = client.options(
        "/v4.3.0/procedure/",
        headers={
            "Origin": "https://app.example.org",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://app.example.org"
    created = client.post(
        "/v4.3.0/procedure/", json=PROCEDURE, headers={"Origin": "https://app.example.org"}
    )
    exposed = created.headers["access-control-expose-headers"].lower()
    assert "etag" in exposed and "location" in exposed
    foreign = client.get("/v4.3.0/metadata", headers={"Origin": "https://evil.example.org"})
    assert "access-control-allow-origin" not in foreign.headers


def test_no_cors_headers_by_default(client):
    response = client.get("/v4.3.0/metadata", headers={"Origin": "https://app.example.org"})
    assert "access-control-allow-origin" not in response.headers
