"""`codoc-fhir import` on PostgreSQL refreshes the planner's statistics of the tables it
fills as it goes (bulk/statistics.py: in a thread, after batches 2, 4, 8...), so that the
look-ups of a long import are not planned on the empty tables it started from."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import Engine, text

from codoc_fhir.bulk.importer import Importer, ImportOptions
from tests.conftest import make_settings
from tests.test_bulk_import import simple_patient, write_ndjson


def last_analyze(engine: Engine) -> dict[str, datetime | None]:
    query = text(
        "SELECT relname, last_analyze FROM pg_stat_user_tables "
        "WHERE relname IN ('dwh_patient', 'fhir_import_id_map')"
    )
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_stat_clear_snapshot()"))
        return {name: when for name, when in conn.execute(query)}


def analyzed_since(engine: Engine, started: datetime) -> bool:
    found = last_analyze(engine)
    return len(found) == 2 and all(when and when >= started for when in found.values())


def test_a_long_import_analyzes_the_tables_it_fills(client: Any, engine, database_url, tmp_path):
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite's planner keeps no statistics for an import to refresh")
    with engine.connect() as conn:
        started = conn.execute(text("SELECT clock_timestamp()")).scalar_one()
    path = write_ndjson(tmp_path / "Patient.ndjson", [simple_patient(f"s{n}") for n in range(8)])
    importer = Importer(make_settings(database_url), ImportOptions(quiet=True, batch_size=2))
    try:
        importer.run([path])
    finally:
        importer.engine.dispose()  # the analyzing session ends: its statistics are published
    assert importer.totals.created == 8
    deadline = time.monotonic() + 10
    while not analyzed_since(engine, started) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert analyzed_since(engine, started), last_analyze(engine)
