"""`codoc-fhir import`: NDJSON and Bundle files of synthetic patients (carebundle), loaded
through the API's mappings, references rewritten, resumable and idempotent."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from carebundle import generate_cohort, to_json, to_ndjson
from sqlalchemy import func, select

from codoc_fhir import cli
from codoc_fhir.bulk_import import Importer
from codoc_fhir.bulk_import_ids import IdMap
from codoc_fhir.warehouse.schema import (
    dwh_patient,
    dwh_patient_stay,
    fhir_import_checkpoint,
    fhir_import_id_map,
)

VENV_BIN = Path(sys.executable).parent
# Dependency order, as docs/IMPORT.md asks; the last three types are not served here.
ORDER = [
    "Patient",
    "Encounter",
    "Observation",
    "DiagnosticReport",
    "MedicationRequest",
    "Condition",
    "Practitioner",
    "AllergyIntolerance",
]


def simple_patient(ident: str) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": ident,
        "identifier": [{"use": "usual", "value": f"IPP-{ident}"}],
        "gender": "female",
        "birthDate": "1970-01-01",
    }


def write_ndjson(path: Path, resources: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(item) + "\n" for item in resources))
    return path


@pytest.fixture
def cohort(tmp_path: Path) -> dict[str, list[dict[str, Any]]]:
    """Four synthetic patients, one NDJSON file per resource type in tmp_path."""
    streams = to_ndjson(generate_cohort(count=4, seed=42))
    files: dict[str, list[dict[str, Any]]] = {}
    for kind, text in streams.items():
        files[kind] = [json.loads(line) for line in text.splitlines() if line]
        write_ndjson(tmp_path / f"{kind}.ndjson", files[kind])
    return files


def run(*args: str) -> int:
    """`codoc-fhir import ...` in-process: its exit status."""
    try:
        cli.main(["import", "--quiet", *args])
    except SystemExit as stop:
        return int(stop.code or 0)
    return 0


def count(engine: Any, table: Any, *where: Any) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()


def id_map(engine: Any) -> dict[tuple[str, str], str]:
    with engine.connect() as conn:
        rows = conn.execute(select(fhir_import_id_map)).mappings().all()
    return {(row["source_type"], row["source_id"]): row["target_id"] for row in rows}


def total(client: Any, kind: str) -> int:
    response = client.get(f"/v4.3.0/{kind}?_summary=count")
    assert response.status_code == 200
    return int(response.json()["total"])


def test_ndjson_cohort_loads_with_references_rewritten_to_our_ids(
    client, engine, database_url, cohort, tmp_path, capsys
):
    files = [str(tmp_path / f"{kind}.ndjson") for kind in ORDER if kind in cohort]
    errors = tmp_path / "errors.ndjson"
    status = run("--database-url", database_url, "--continue-on-error", "--errors", str(errors))
    assert status == 2  # argparse: FILE is required
    capsys.readouterr()
    status = run(
        "--database-url", database_url, "--continue-on-error", "--errors", str(errors), *files
    )
    out = capsys.readouterr().out

    # carebundle's DiagnosticReports name a Practitioner as performer: refused by the contract.
    reports = cohort["DiagnosticReport"]
    assert status == 1
    assert (
        f"DiagnosticReport.ndjson: 0 created, 0 skipped (already imported), {len(reports)} failed"
        in out
    )
    failures = [json.loads(line) for line in errors.read_text().splitlines()]
    assert len(failures) == len(reports)
    assert {item["resourceType"] for item in failures} == {"DiagnosticReport"}
    assert "must reference Organization, got Practitioner" in json.dumps(failures[0]["outcome"])
    assert failures[0]["line"] == 1 and failures[0]["id"] == reports[0]["id"]
    assert "not imported (type not served here): " in out
    # Practitioner and AllergyIntolerance are stored whole (docs/resources/other-types.md).
    for stored in ("Practitioner", "AllergyIntolerance"):
        assert f"{stored}.ndjson: {len(cohort[stored])} created" in out

    # What the warehouse holds matches the counters, row for row.
    patients, encounters = len(cohort["Patient"]), len(cohort["Encounter"])
    observations = len(cohort["Observation"])
    assert f"Patient.ndjson: {patients} created" in out
    assert f"Observation.ndjson: {observations} created" in out
    assert count(engine, dwh_patient) == total(client, "Patient") == patients
    assert count(engine, dwh_patient_stay) == total(client, "Encounter") == encounters
    assert total(client, "Observation") == observations
    assert total(client, "MedicationRequest") == len(cohort["MedicationRequest"])
    assert total(client, "DiagnosticReport") == 0

    # Every reference now names our resources.
    mapped = id_map(engine)
    for source in cohort["Observation"]:
        ours = client.get(f"/v4.3.0/Observation/{mapped[('Observation', source['id'])]}").json()
        patient_id = source["subject"]["reference"].split("/")[1]
        assert ours["subject"]["reference"] == f"Patient/{mapped[('Patient', patient_id)]}"
        encounter_id = source["encounter"]["reference"].split("/")[1]
        assert ours["encounter"]["reference"] == f"Encounter/{mapped[('Encounter', encounter_id)]}"

    # A re-run creates nothing: finished files are skipped, changed ones skip known ids.
    assert run("--database-url", database_url, *files[:3]) == 0
    assert "done by an earlier run" in capsys.readouterr().out
    with (tmp_path / "Observation.ndjson").open("a") as handle:
        handle.write("\n")
    assert run("--database-url", database_url, *files[:3]) == 0
    out = capsys.readouterr().out
    assert f"Observation.ndjson: 0 created, {observations} skipped (already imported)" in out
    assert total(client, "Observation") == observations
    assert count(engine, dwh_patient) == patients

    # The same patient as a transaction Bundle (no ids, urn:uuid fullUrls): nothing new.
    bundle = json.loads(to_json(generate_cohort(count=4, seed=42)[0]))
    path = tmp_path / "patient0.json"
    path.write_text(json.dumps(bundle))
    assert run("--database-url", database_url, "--continue-on-error", str(path)) == 1
    out = capsys.readouterr().out
    assert "patient0.json: 0 created, " in out
    assert total(client, "Observation") == observations
    assert count(engine, dwh_patient) == patients


def test_transaction_bundle_urn_references_and_stop_at_first_failure(
    client, engine, database_url, tmp_path, capsys
):
    bundle = json.loads(to_json(generate_cohort(count=1, seed=3)[0]))
    bundle["entry"].reverse()  # referenced entries last: the importer sorts them first
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle))
    kinds = Counter(entry["resource"]["resourceType"] for entry in bundle["entry"])

    assert run("--database-url", database_url, str(path)) == 1
    err = capsys.readouterr().err
    match = re.search(r"bundle\.json Bundle\.entry\[(\d+)\]: DiagnosticReport: 400 invalid", err)
    assert match is not None and "got Practitioner" in err
    failing = bundle["entry"][int(match.group(1))]["resource"]
    # Before the failing entry: what it references, committed, urn:uuid references resolved.
    mapped = id_map(engine)
    for result in failing["result"]:
        assert ("Observation", result["reference"]) in mapped
    assert total(client, "Patient") == 1 and total(client, "Encounter") == 1
    encounter = client.get("/v4.3.0/Encounter/1").json()
    assert encounter["subject"]["reference"] == "Patient/1"
    observation = client.get("/v4.3.0/Observation?_count=1").json()["entry"][0]["resource"]
    assert observation["subject"]["reference"] == "Patient/1"
    assert observation["encounter"]["reference"] == "Encounter/1"
    committed = total(client, "Observation")
    assert 0 < committed < kinds["Observation"]

    # A re-run resumes at the failing entry: nothing is created twice.
    assert run("--database-url", database_url, str(path)) == 1
    assert match.group(0) in capsys.readouterr().err
    assert total(client, "Observation") == committed
    # Going on after errors: the rest is created, the reports are reported, once each.
    assert run("--database-url", database_url, "--continue-on-error", str(path)) == 1
    out = capsys.readouterr().out
    assert f"{kinds['DiagnosticReport']} failed" in out
    assert total(client, "Observation") == kinds["Observation"]
    assert count(engine, dwh_patient) == 1
    assert run("--database-url", database_url, str(path)) == 0  # done: skipped
    assert total(client, "Observation") == kinds["Observation"]


def test_a_failing_line_stops_the_import_and_a_fixed_file_resumes_without_duplicates(
    client, engine, database_url, cohort, tmp_path, capsys
):
    observations = cohort["Observation"][:12]
    write_ndjson(tmp_path / "Patient.ndjson", cohort["Patient"])
    write_ndjson(tmp_path / "Encounter.ndjson", cohort["Encounter"])
    broken = [*observations[:7], {"resourceType": "Observation", "status": "final"}]
    path = write_ndjson(tmp_path / "Observation.ndjson", broken + observations[7:])
    files = [str(tmp_path / name) for name in ("Patient.ndjson", "Encounter.ndjson")]

    assert run("--database-url", database_url, "--batch-size", "3", *files, str(path)) == 1
    err = capsys.readouterr().err
    assert f"{path}:8: Observation: 400" in err
    assert total(client, "Observation") == 7
    with engine.connect() as conn:
        lines_done = conn.execute(
            select(fhir_import_checkpoint.c.lines_done).where(
                fhir_import_checkpoint.c.file_path == str(path.resolve())
            )
        ).scalar_one()
    assert lines_done == 7

    write_ndjson(path, observations)  # fixed: the known ids are skipped, the rest created
    assert run("--database-url", database_url, "--batch-size", "3", *files, str(path)) == 0
    out = capsys.readouterr().out
    assert "Observation.ndjson: 5 created, 7 skipped (already imported), 0 failed" in out
    assert total(client, "Observation") == 12
    assert (
        len({value for (kind, _), value in id_map(engine).items() if kind == "Observation"}) == 12
    )


def test_a_crash_inside_a_batch_loses_nothing_and_the_rerun_resumes(
    client, engine, database_url, cohort, tmp_path, monkeypatch, capsys
):
    write_ndjson(tmp_path / "Patient.ndjson", cohort["Patient"])
    write_ndjson(tmp_path / "Encounter.ndjson", cohort["Encounter"])
    observations = cohort["Observation"][:20]
    path = write_ndjson(tmp_path / "Observation.ndjson", observations)
    files = [str(tmp_path / "Patient.ndjson"), str(tmp_path / "Encounter.ndjson"), str(path)]
    real_flush = IdMap.flush
    calls = []

    def crash_in_fifth_batch(self: IdMap, conn: Any) -> None:
        calls.append(1)
        if len(calls) == 5:  # batches 1-2: Patient, Encounter; 3-4: 8 Observations
            raise KeyboardInterrupt  # after the batch's resources were inserted
        real_flush(self, conn)

    monkeypatch.setattr(IdMap, "flush", crash_in_fifth_batch)
    assert run("--database-url", database_url, "--batch-size", "4", *files) == 130
    assert "run again to resume" in capsys.readouterr().err
    assert total(client, "Observation") == 8  # the fifth batch was rolled back whole
    monkeypatch.setattr(IdMap, "flush", real_flush)

    assert run("--database-url", database_url, "--batch-size", "4", *files) == 0
    out = capsys.readouterr().out
    assert "Patient.ndjson: done by an earlier run" in out
    assert "Observation.ndjson: 20 created, 0 skipped (already imported), 0 failed" in out
    assert total(client, "Observation") == 20
    assert (
        count(engine, fhir_import_id_map, fhir_import_id_map.c.source_type == "Observation") == 20
    )


def test_unsupported_types_blank_lines_and_bad_lines(client, database_url, tmp_path, capsys):
    patient = simple_patient("p1")
    path = tmp_path / "mixed.ndjson"
    path.write_text(
        json.dumps(patient)
        + "\n\n"
        + json.dumps({"resourceType": "Condition", "id": "c1"})
        + "\n{not json\n"
        + json.dumps([1, 2])
        + "\n"
    )
    errors = tmp_path / "errors.ndjson"
    status = run(
        "--database-url", database_url, "--continue-on-error", "--errors", str(errors), str(path)
    )
    out, err = capsys.readouterr()
    assert status == 1
    assert "mixed.ndjson: 1 created, 0 skipped (already imported), 2 failed" in out
    assert "not imported (type not served here): Condition 1" in out
    assert f"{path}:4: line: 400 invalid: not JSON" in err
    assert [json.loads(line)["line"] for line in errors.read_text().splitlines()] == [4, 5]
    assert total(client, "Patient") == 1


def test_files_that_cannot_be_imported(client, database_url, tmp_path, capsys):
    document = tmp_path / "document.json"
    document.write_text(json.dumps({"resourceType": "Bundle", "type": "document", "entry": []}))
    assert run("--database-url", database_url, str(document)) == 1
    assert "Bundle type 'document' is not imported" in capsys.readouterr().err
    assert run("--database-url", database_url, str(tmp_path / "missing.ndjson")) == 2
    assert "no such file" in capsys.readouterr().err


def test_the_installed_command_imports_with_the_environment_database(
    client, database_url, tmp_path
):
    patients = [simple_patient(f"src-{n}") for n in range(3)]
    path = write_ndjson(tmp_path / "Patient.ndjson", patients)
    env = dict(os.environ, CODOC_DATABASE_URL=database_url)
    result = subprocess.run(
        [str(VENV_BIN / "codoc-fhir"), "import", str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Patient.ndjson: 3 created, 0 skipped (already imported), 0 failed" in result.stdout
    assert "resources/s" in result.stdout
    assert total(client, "Patient") == 3


def test_importer_counts_per_file(client, database_url, tmp_path):
    from codoc_fhir.bulk_import import ImportOptions
    from tests.conftest import make_settings

    path = write_ndjson(tmp_path / "Patient.ndjson", [simple_patient("x")])
    importer = Importer(make_settings(database_url), ImportOptions(quiet=True))
    try:
        counters = importer.import_file(path)
        again = importer.import_file(path)
    finally:
        importer.engine.dispose()
    assert (counters.created, counters.skipped, counters.failed) == (1, 0, 0)
    assert (again.created, again.skipped) == (1, 0)  # the checkpoint's counters


def test_progress_lines_without_a_terminal_and_a_bar_on_one(
    client, database_url, tmp_path, capsys, monkeypatch
):
    from codoc_fhir.bulk_import import ImportOptions, run_import
    from tests.conftest import make_settings

    patients = [simple_patient(f"p{n}") for n in range(4)]
    first = write_ndjson(tmp_path / "first.ndjson", patients[:2])
    settings = make_settings(database_url)
    options = ImportOptions(batch_size=1, report_every=0)
    assert run_import(settings, [first], options) == 0
    err = capsys.readouterr().err
    assert "first.ndjson: 50% (" in err and "first.ndjson: 100% (" in err

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    second = write_ndjson(tmp_path / "second.ndjson", patients[2:])
    assert run_import(settings, [second], options) == 0
    err = capsys.readouterr().err
    assert "second.ndjson: 100%" in err and "created=2" in err  # the tqdm bar
