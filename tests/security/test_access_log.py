"""The access log: one row per request, the token's subject as user, never tokens or bodies."""

from __future__ import annotations

import json

from sqlalchemy import select

from codoc_fhir.cli import main
from codoc_fhir.warehouse.schema import fhir_access_log
from tests.factories import seed_procedure_context
from tests.security.tokens import AUTH_ENV, bearer, hs256

MARKER = "SECRET-BODY-MARKER-42"


def logged_rows(client, engine) -> list[dict]:
    client.app.state.access_log.flush()
    with engine.connect() as conn:
        return [dict(row) for row in conn.execute(select(fhir_access_log)).mappings()]


def test_no_token_nor_body_in_the_log(make_client, engine):
    seed_procedure_context(engine)
    client = make_client(**AUTH_ENV)
    token = hs256("system/*.*", sub="dr-house")
    body = {
        "resourceType": "Procedure",
        "status": "completed",
        "code": {"coding": [{"code": "X1", "display": MARKER}]},
        "subject": {"reference": "Patient/1"},
        "performedDateTime": "2024-01-15T14:00:00Z",
    }
    created = client.post("/v4.3.0/procedure/", json=body, headers=bearer(token))
    assert created.status_code == 201, created.text
    assert client.get(f"/v4.3.0/Patient/1?access_token={token}", headers=bearer(token)).status_code
    assert client.get("/v4.3.0/Patient/1").status_code == 401
    rows = logged_rows(client, engine)
    dumped = json.dumps(rows, default=str)
    assert token not in dumped
    assert token.split(".")[2] not in dumped  # not even the signature
    assert MARKER not in dumped
    assert [row["user_id"] for row in rows] == ["dr-house", "dr-house", "anonymous"]
    assert [row["status_code"] for row in rows] == [201, 200, 401]
    assert rows[0]["method"] == "POST"
    assert rows[1]["url"] == "/v4.3.0/Patient/1?access_token=REDACTED"


def test_access_log_command_filters(make_client, engine, database_url, monkeypatch, capsys):
    client = make_client()
    client.get("/v4.3.0/metadata")
    client.get("/v4.3.0/Patient/999")
    logged_rows(client, engine)
    monkeypatch.setenv("CODOC_DATABASE_URL", database_url)
    from codoc_fhir.config import get_settings

    get_settings.cache_clear()
    try:
        main(["access-log", "--since", "1h", "--user", "anonymous", "--json"])
        lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert [line["status_code"] for line in lines] == [404, 200]
        main(["access-log", "--status", "404", "--limit", "5"])
        text = capsys.readouterr().out.strip().splitlines()
        assert len(text) == 1 and "GET /v4.3.0/Patient/999 404" in text[0]
        main(["access-log", "--user", "nobody"])
        assert capsys.readouterr().out == ""
    finally:
        get_settings.cache_clear()
