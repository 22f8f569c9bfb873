"""The streaming $export writer (bulk/export.py) writes what the chunked one wrote.

The reference below is the writer as it was before streaming: each kind read in chunks of
1000 rows by primary key (one short read a chunk), each chunk rendered by `read_many`, a
resource a line of `orjson.dumps`. The files of a real job must hold the same bytes: no row
lost, repeated, reordered or rendered otherwise, across several streaming chunks.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from codoc_fhir.bulk import export, export_jobs
from codoc_fhir.resources.registry import build_registry
from tests.api.test_bulk_export import observation, seed
from tests.conftest import make_settings
from tests.factories import make_patient, make_stay

REFERENCE_CHUNK = 1000


def reference_file(engine, registry, fhir_type: str, patient_level: bool) -> bytes:
    """The pre-streaming writer's bytes for one type (the whole warehouse, no `_since`)."""
    lines = []
    for kind in export.exported_kinds(registry, fhir_type, patient_level):
        clause = export.rows_clause(kind, None, None, None)
        after = 0
        while True:
            with engine.connect() as conn:
                rows = export.rows_after(conn, kind, clause, after, REFERENCE_CHUNK)
                lines += [orjson.dumps(item) + b"\n" for item in kind.read_many(conn, rows)]
            if len(rows) < REFERENCE_CHUNK:
                break
            after = rows[-1][kind.key.name]
    return b"".join(lines)


def run_job(engine, registry, root: Path, types: list[str], patient_level: bool) -> dict:
    request = export_jobs.ExportRequest(
        types=types,
        since=None,
        patient=None,
        patient_level=patient_level,
        owner="test",
        request_url="http://test/v4.3.0/$export",
    )
    with engine.begin() as conn:
        num = export_jobs.create_job(conn, request)
    export.run_export(engine, registry, str(root), num, request)
    with engine.connect() as conn:
        job = export_jobs.fetch_job(conn, num)
    assert job is not None and job["status"] == export_jobs.COMPLETE, job
    return {"job": job, "outputs": export_jobs.job_outputs(job)}


@pytest.mark.parametrize("patient_level", [False, True])
def test_streamed_files_are_byte_identical_to_the_chunked_writer(
    client, engine, database_url, tmp_path, monkeypatch, patient_level
):
    seed(engine, client)
    for index in range(7):  # more patients, stays and facts than one streaming chunk
        patient = make_patient(engine, lastname=f"Many{index}", firstname="Ann", sex="F")
        make_stay(engine, patient_num=patient)
        body = observation(patient, "GLU" if index % 2 else "HB")
        assert client.post("/v4.3.0/Observation", json=body).status_code == 201
    monkeypatch.setattr(export, "CHUNK_ROWS", 3)  # several chunks per kind
    registry = build_registry(make_settings(database_url))
    types = list(registry.types)
    if patient_level:
        types = [name for name in types if export.exported_kinds(registry, name, True)]
    done = run_job(engine, registry, tmp_path, types, patient_level)
    directory = export_jobs.job_directory(tmp_path, done["job"])
    written = {item["type"]: item["count"] for item in done["outputs"]}
    assert {"Patient", "Encounter", "Observation", "Procedure"} <= set(written)
    assert written["Patient"] == 9 and written["Observation"] >= 9
    for fhir_type in types:
        expected = reference_file(engine, registry, fhir_type, patient_level)
        path = directory / f"{fhir_type}.ndjson"
        if not expected:
            assert not path.exists()
            continue
        assert path.read_bytes() == expected, fhir_type
        assert written[fhir_type] == expected.count(b"\n")
