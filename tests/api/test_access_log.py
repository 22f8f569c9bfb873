"""The access log: one row per request, with what was asked and how it ended; never bodies."""

from __future__ import annotations

from sqlalchemy import select

from codoc_fhir.warehouse.schema import fhir_access_log
from tests.factories import seed_procedure_context
from tests.resources.test_procedure import SEED_PROCEDURE


def _rows(engine) -> list[dict]:
    with engine.connect() as conn:
        return [dict(row) for row in conn.execute(select(fhir_access_log)).mappings()]


def test_each_request_writes_one_row_without_body(app, client, engine):
    seed_procedure_context(engine)
    client.post(
        "/v4.3.0/procedure/?_pretty=true",
        json=SEED_PROCEDURE,
        headers={"user-agent": "ward-loader/1.0", "accept": "application/fhir+json"},
    )
    client.get("/v4.3.0/procedure/999/")
    app.state.access_log.flush()
    rows = _rows(engine)
    assert [(row["method"], row["status_code"]) for row in rows] == [("POST", 201), ("GET", 404)]
    created = rows[0]
    assert created["url"] == "/v4.3.0/procedure/?_pretty=true"
    assert created["user_id"] == "anonymous"
    assert created["user_agent"] == "ward-loader/1.0"
    assert created["accept"] == "application/fhir+json"
    assert created["content_type"] == "application/json"
    assert created["ip_address"]
    assert created["duration_ms"] >= 0
    assert created["end_date"] >= created["start_date"]
    for row in rows:
        assert "COLO001" not in " ".join(str(value) for value in row.values())
