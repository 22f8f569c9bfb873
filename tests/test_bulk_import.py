"""`codoc-fhir import`: NDJSON and Bundle files of synthetic patients (carebundle), loaded
through the API's mappings, references rewritten, resumable and idempotent."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from carebundle import generate_cohort, to_json, to_ndjson
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from codoc_fhir import cli
from codoc_fhir.bulk.ids import IdMap
from codoc_fhir.bulk.importer import Importer
from codoc_fhir.bulk.lock import BUSY, import_lock
from codoc_fhir.fhir.dates import utc_now
from codoc_fhir.warehouse.schema import (
    dwh_patient,
    dwh_patient_stay,
    fhir_import_checkpoint,
    fhir_import_id_map,
)
from tests.conftest import empty_tables
from tests.integrity.tcp_proxy import TcpProxy

VENV_BIN = Path(sys.executable).parent
# Dependency order, as docs/IMPORT.md asks; the last two types are not served here.
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

    # carebundle's DiagnosticReports name a Practitioner as performer: stored, the reference
    # kept as sent (CONTRACT section 9; the Practitioner itself is not imported here).
    reports = cohort["DiagnosticReport"]
    assert status == 0, out
    assert f"DiagnosticReport.ndjson: {len(reports)} created" in out
    assert not errors.exists() or not errors.read_text().strip()
    assert "not imported (type not served here)" not in out  # every type carebundle writes
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
    assert total(client, "Condition") == len(cohort["Condition"])
    assert total(client, "DiagnosticReport") == len(reports)
    report = client.get("/v4.3.0/DiagnosticReport?_count=1").json()["entry"][0]["resource"]
    assert report["performer"][0]["reference"].startswith("Practitioner/")

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
    assert run("--database-url", database_url, "--continue-on-error", str(path)) == 0
    out = capsys.readouterr().out
    assert "patient0.json: 0 created, " in out and " 0 failed" in out
    assert total(client, "Observation") == observations
    assert count(engine, dwh_patient) == patients


def test_transaction_bundle_urn_references_and_stop_at_first_failure(
    client, engine, database_url, tmp_path, capsys
):
    bundle = json.loads(to_json(generate_cohort(count=1, seed=3)[0]))
    bundle["entry"].reverse()  # referenced entries last: the importer sorts them first
    reports = [
        e["resource"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "DiagnosticReport"
    ]
    reports[0]["status"] = "bogus"  # one bad report (a Practitioner performer is accepted)
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle))
    kinds = Counter(entry["resource"]["resourceType"] for entry in bundle["entry"])

    assert run("--database-url", database_url, str(path)) == 1
    err = capsys.readouterr().err
    match = re.search(r"bundle\.json Bundle\.entry\[(\d+)\]: DiagnosticReport: 400 invalid", err)
    assert match is not None and "status" in err
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
    assert committed == kinds["Observation"]  # results load before the reports naming them

    # A re-run resumes at the failing entry: nothing is created twice.
    assert run("--database-url", database_url, str(path)) == 1
    assert match.group(0) in capsys.readouterr().err
    assert total(client, "Observation") == committed
    # Going on after errors: the rest is created, the reports are reported, once each.
    assert run("--database-url", database_url, "--continue-on-error", str(path)) == 1
    out = capsys.readouterr().out
    assert "1 failed" in out
    assert total(client, "DiagnosticReport") == kinds["DiagnosticReport"] - 1
    assert total(client, "Observation") == kinds["Observation"]
    assert count(engine, dwh_patient) == 1
    # Failures are not done: a plain re-run tries them again (and only them).
    assert run("--database-url", database_url, "--continue-on-error", str(path)) == 1
    out = capsys.readouterr().out
    assert "bundle.json: 0 created, " in out
    assert "(already imported), 1 failed" in out  # the bad report, once more
    assert total(client, "Observation") == kinds["Observation"]


def test_a_failing_line_stops_the_import_and_a_fixed_file_resumes_without_duplicates(
    client, engine, database_url, cohort, tmp_path, capsys
):
    observations = cohort["Observation"][:12]
    write_ndjson(tmp_path / "Practitioner.ndjson", cohort["Practitioner"])  # the performers
    write_ndjson(tmp_path / "Patient.ndjson", cohort["Patient"])
    write_ndjson(tmp_path / "Encounter.ndjson", cohort["Encounter"])
    broken = [*observations[:7], {"resourceType": "Observation", "status": "final"}]
    path = write_ndjson(tmp_path / "Observation.ndjson", broken + observations[7:])
    names = ("Practitioner.ndjson", "Patient.ndjson", "Encounter.ndjson")
    files = [str(tmp_path / name) for name in names]

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


def without(resource: dict, name: str) -> dict:
    return {key: value for key, value in resource.items() if key != name}


def test_a_crash_inside_a_batch_loses_nothing_and_the_rerun_resumes(
    client, engine, database_url, cohort, tmp_path, monkeypatch, capsys
):
    write_ndjson(tmp_path / "Patient.ndjson", cohort["Patient"])
    write_ndjson(tmp_path / "Encounter.ndjson", cohort["Encounter"])
    # without their Practitioner performers: none waits for a resource of a later file
    observations = [without(item, "performer") for item in cohort["Observation"][:20]]
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
    # This run's counts: the 8 committed before the crash are not read again.
    assert (
        "Observation.ndjson: 12 created, 0 skipped (already imported), 0 failed, "
        + ("resumed after 8")
        in out
    )
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
        + json.dumps({"resourceType": "Parameters", "id": "a1"})
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
    assert "not imported (type not served here): Parameters 1" in out
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
    from codoc_fhir.bulk.importer import ImportOptions
    from tests.conftest import make_settings

    path = write_ndjson(tmp_path / "Patient.ndjson", [simple_patient("x")])
    importer = Importer(make_settings(database_url), ImportOptions(quiet=True))
    try:
        counters = importer.import_file(path)
        again = importer.import_file(path)
    finally:
        importer.engine.dispose()
    assert (counters.created, counters.skipped, counters.failed) == (1, 0, 0)
    assert (again.created, again.skipped) == (1, 0)  # read once: the first read's counters


def test_progress_lines_without_a_terminal_and_a_bar_on_one(
    client, database_url, tmp_path, capsys, monkeypatch
):
    from codoc_fhir.bulk.importer import ImportOptions, run_import
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


# --- any order, retries, moved and edited files, one import at a time, causes ------------


def organization(ident: str, code: str, level: str, parent: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "Organization",
        "id": ident,
        "identifier": [{"use": "usual", "value": code}],
        "name": f"{level} {code}",
        "type": [{"coding": [{"code": level}]}],
    }
    if parent is not None:
        body["partOf"] = {"reference": f"Organization/{parent}"}
    return body


def collection(resources: list[dict[str, Any]]) -> dict[str, Any]:
    entries = [{"fullUrl": f"urn:uuid:{item['id']}", "resource": item} for item in resources]
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def test_lines_and_files_in_any_order_load_whole(client, engine, database_url, cohort, tmp_path):
    # One mixed export file: a unit before its department before its site, then
    # Observations whose patients and encounters are in a Bundle file read after it.
    tree = [
        organization("u1", "ICU1", "team", "d1"),
        organization("d1", "CARD1", "dept", "s1"),
        organization("s1", "HOSP1", "prov", None),
    ]
    mixed = write_ndjson(tmp_path / "export.ndjson", tree + cohort["Observation"])
    people = tmp_path / "people.json"
    people.write_text(json.dumps(collection(cohort["Encounter"] + cohort["Patient"])))
    files = [str(people), str(mixed)]

    assert run("--database-url", database_url, *files) == 0
    assert total(client, "Organization") == 3
    mapped = id_map(engine)
    unit = client.get(f"/v4.3.0/Organization/{mapped[('Organization', 'u1')]}").json()
    assert unit["partOf"]["reference"] == f"Organization/{mapped[('Organization', 'd1')]}"
    assert total(client, "Observation") == len(cohort["Observation"])
    for source in cohort["Observation"][:5]:
        ours = client.get(f"/v4.3.0/Observation/{mapped[('Observation', source['id'])]}").json()
        patient_id = source["subject"]["reference"].split("/")[1]
        assert ours["subject"]["reference"] == f"Patient/{mapped[('Patient', patient_id)]}"
    # Done, all of it: a re-run reads nothing again.
    assert run("--database-url", database_url, *files) == 0
    assert count(engine, dwh_patient) == len(cohort["Patient"])


def test_a_rerun_retries_what_failed_once_its_cause_is_fixed(
    client, engine, database_url, cohort, tmp_path, capsys
):
    encounters = write_ndjson(tmp_path / "Encounter.ndjson", cohort["Encounter"])
    observations = write_ndjson(tmp_path / "Observation.ndjson", cohort["Observation"])
    errors = tmp_path / "errors.ndjson"
    files = [str(observations), str(encounters)]
    args = ["--database-url", database_url, "--errors", str(errors)]

    # The Patient file forgotten: every encounter and observation fails, by one cause each.
    assert run(*args, *files) == 1
    out = capsys.readouterr().out
    n_enc, n_obs = len(cohort["Encounter"]), len(cohort["Observation"])
    assert f"total: 0 created, 0 skipped (already imported), {n_enc + n_obs} failed" in out
    assert "failures by cause:" in out
    cause = "names a resource that this import run (or an earlier one) did not create"
    assert re.search(rf"  {n_obs} Observation: 400 not-found: .*Patient/… {re.escape(cause)}", out)
    assert re.search(rf"  {n_enc} Encounter: 400 not-found: .*Patient/… {re.escape(cause)}", out)
    assert f"at {observations}:1, {observations}:2, {observations}:3, ..." in out
    failures = [json.loads(line) for line in errors.read_text().splitlines()]
    assert len(failures) == n_enc + n_obs and cause in failures[0]["cause"]
    assert total(client, "Encounter") == total(client, "Observation") == 0

    # Added: the failures are tried again, nothing else is needed.
    patients = write_ndjson(tmp_path / "Patient.ndjson", cohort["Patient"])
    assert run("--database-url", database_url, *files, str(patients)) == 0
    out = capsys.readouterr().out
    assert f"Observation.ndjson: {n_obs} created, 0 skipped (already imported), 0 failed" in out
    assert total(client, "Observation") == n_obs and total(client, "Encounter") == n_enc
    assert run("--database-url", database_url, *files, str(patients)) == 0
    assert "Observation.ndjson: done by an earlier run" in capsys.readouterr().out
    assert total(client, "Observation") == n_obs


def test_moved_and_renamed_files_keep_their_progress(
    client, engine, database_url, cohort, tmp_path, capsys
):
    path = write_ndjson(tmp_path / "Patient.ndjson", cohort["Patient"])
    bundle = json.loads(to_json(generate_cohort(count=1, seed=3)[0]))
    report = next(e for e in bundle["entry"] if e["resource"]["resourceType"] == "DiagnosticReport")
    report["resource"]["status"] = "bogus"  # one failure to try again
    bundle_path = tmp_path / "bundle.json"
    bundle_path.write_text(json.dumps(bundle))
    assert run("--database-url", database_url, "--continue-on-error", str(path)) == 0
    assert run("--database-url", database_url, "--continue-on-error", str(bundle_path)) == 1
    observations = total(client, "Observation")
    capsys.readouterr()

    (tmp_path / "moved").mkdir()
    moved = path.rename(tmp_path / "moved" / "patients-2024.ndjson")
    moved_bundle = bundle_path.rename(tmp_path / "moved" / "synthea.json")
    assert run("--database-url", database_url, "--continue-on-error", str(moved)) == 0
    assert f"{moved}: done by an earlier run" in capsys.readouterr().out
    # The Bundle's failure (the bad report) is tried again, nothing else.
    assert run("--database-url", database_url, "--continue-on-error", str(moved_bundle)) == 1
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "synthea.json: 0 created, " in out
    assert total(client, "Observation") == observations
    assert count(engine, dwh_patient) == len(cohort["Patient"]) + 1


def test_an_edited_file_writes_only_what_is_new_or_changed(
    client, engine, database_url, tmp_path, capsys
):
    patients = [simple_patient(f"p{n}") for n in range(3)]
    path = write_ndjson(tmp_path / "Patient.ndjson", patients)
    assert run("--database-url", database_url, str(path)) == 0
    capsys.readouterr()

    patients[1]["birthDate"] = "1980-02-03"  # same size, edited in place
    patients[0]["birthDate"] = "1970-01-01"  # unchanged
    write_ndjson(path, [*patients, simple_patient("p3")])
    assert run("--database-url", database_url, str(path)) == 0
    out = capsys.readouterr().out
    assert "Patient.ndjson: 1 created, 1 updated, 2 skipped (already imported), 0 failed" in out
    mapped = id_map(engine)
    edited = client.get(f"/v4.3.0/Patient/{mapped[('Patient', 'p1')]}").json()
    assert edited["birthDate"] == "1980-02-03"
    assert edited["meta"]["versionId"] == "2"
    untouched = client.get(f"/v4.3.0/Patient/{mapped[('Patient', 'p0')]}").json()
    assert untouched["meta"]["versionId"] == "1"
    assert count(engine, dwh_patient) == 4

    # A copy given with its original in one run is read once.
    fresh = write_ndjson(tmp_path / "new.ndjson", [simple_patient("p9")])
    copy = tmp_path / "copy.ndjson"
    copy.write_bytes(fresh.read_bytes())
    assert run("--database-url", database_url, str(fresh), str(copy)) == 0
    out = capsys.readouterr().out
    assert f"{copy}: the same content as {fresh}, skipped" in out
    assert "new.ndjson: 1 created" in out and count(engine, dwh_patient) == 5


def codoc_import(database_url: str, *args: str) -> subprocess.Popen[str]:
    env = dict(os.environ, CODOC_DATABASE_URL=database_url)
    return subprocess.Popen(
        [str(VENV_BIN / "codoc-fhir"), "import", "--quiet", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_second_import_on_the_database_exits_2_or_waits(client, engine, database_url, tmp_path):
    path = write_ndjson(tmp_path / "Patient.ndjson", [simple_patient(f"c{n}") for n in range(40)])
    with import_lock(database_url, wait=False):  # another import is running
        busy = codoc_import(database_url, str(path))
        out, err = busy.communicate(timeout=120)
        assert busy.returncode == 2
        assert err.splitlines() == [BUSY]
        waiting = codoc_import(database_url, "--wait", str(path))
        assert waiting.stderr is not None
        assert waiting.stderr.readline().startswith("waiting: another `codoc-fhir import`")
    out, err = waiting.communicate(timeout=120)
    assert waiting.returncode == 0, err
    assert "Patient.ndjson: 40 created" in out
    assert count(engine, dwh_patient) == 40


def test_two_imports_at_once_create_nothing_twice(client, engine, database_url, tmp_path):
    patients = [simple_patient(f"r{n}") for n in range(150)]
    first = write_ndjson(tmp_path / "a.ndjson", patients)
    second = write_ndjson(tmp_path / "b.ndjson", list(reversed(patients)))
    runs = [codoc_import(database_url, str(first)), codoc_import(database_url, str(second))]
    outputs = [job.communicate(timeout=180) for job in runs]
    results = [(job.returncode, *output) for job, output in zip(runs, outputs, strict=True)]
    assert sorted(status for status, _, _ in results) in ([0, 0], [0, 2])
    for status, _, err in results:
        assert "Traceback" not in err
        if status == 2:
            assert err.splitlines() == [BUSY]
    waited = [codoc_import(database_url, "--wait", str(p)) for p in (first, second)]
    for job in waited:
        _, err = job.communicate(timeout=180)
        assert job.returncode == 0 and "Traceback" not in err
    assert count(engine, dwh_patient) == 150
    assert count(engine, fhir_import_id_map) == 150


def test_a_value_the_database_refuses_fails_that_resource_only(
    client, engine, database_url, tmp_path, capsys
):
    refused = simple_patient("nul")
    refused["name"] = [{"family": "A\u0000B"}]  # valid JSON and FHIR; PostgreSQL text refuses NUL
    path = write_ndjson(tmp_path / "Patient.ndjson", [refused, simple_patient("fine")])
    status = run("--database-url", database_url, "--continue-on-error", str(path))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    if engine.dialect.name == "postgresql":
        assert status == 1
        assert "Patient.ndjson: 1 created, 0 skipped (already imported), 1 failed" in out
        assert "  1 Patient: 400 invalid: The database refused a value: PostgreSQL text " in out
        assert f"at {path}:1\n" in out
    else:
        assert status == 0 and "Patient.ndjson: 2 created" in out
    assert total(client, "Patient") == (1 if engine.dialect.name == "postgresql" else 2)


def test_the_database_going_away_stops_the_import_with_one_line_and_it_resumes(
    client, engine, database_url, tmp_path
):
    if engine.dialect.name != "postgresql":
        pytest.skip("the TCP proxy stands in front of PostgreSQL")
    patients = [simple_patient(f"g{n}") for n in range(1500)]
    path = write_ndjson(tmp_path / "Patient.ndjson", patients)
    address = make_url(database_url)
    proxy = TcpProxy((address.host or "127.0.0.1", address.port or 5432))
    proxy.start()
    through = address.set(host="127.0.0.1", port=proxy.port).render_as_string(False)
    try:
        job = codoc_import(through, "--batch-size", "20", str(path))
        while count(engine, dwh_patient) == 0 and job.poll() is None:
            time.sleep(0.1)  # until the first batch is committed
        proxy.stop()  # the database goes away in the middle of the import
        _, err = job.communicate(timeout=180)
    finally:
        proxy.stop()
    assert job.returncode == 3, err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: the database failed (")
    assert 0 < count(engine, dwh_patient) < len(patients)

    again = codoc_import(database_url, "--batch-size", "100", str(path))
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    assert "resumed after " in out
    assert count(engine, dwh_patient) == count(engine, fhir_import_id_map) == len(patients)


def test_grouped_creates_give_the_outcomes_of_one_at_a_time(
    client, engine, database_url, tmp_path, capsys
):
    """A batch with a bad resource, a duplicate source id (edited: an update) and a
    reference inside the batch: the same counts, failure report and rows as batch size 1."""
    patients = [simple_patient(f"g{n}") for n in range(6)]
    patients[3] = patients[3] | {"gender": "bogus"}
    patients.append(simple_patient("g1") | {"birthDate": "1971-02-02"})  # g1 edited
    patients.append(patients[0] | {"id": "g-linked", "identifier": [{"value": "IPP-l"}]})
    patients[-1]["link"] = [{"other": {"reference": "Patient/g0"}, "type": "replaced-by"}]
    path = write_ndjson(tmp_path / "Patient.ndjson", patients)
    outcomes = []
    for size in ("500", "1"):
        errors = tmp_path / f"errors-{size}.ndjson"
        status = run(
            "--database-url", database_url, "--batch-size", size,
            "--continue-on-error", "--errors", str(errors), str(path),
        )  # fmt: skip
        captured = capsys.readouterr()
        with engine.connect() as conn:
            births = conn.execute(
                select(dwh_patient.c.birth_date).order_by(dwh_patient.c.patient_num)
            ).all()
        summary = [line for line in captured.out.splitlines() if "Patient.ndjson" in line]
        outcomes.append((status, summary, errors.read_text(), births, id_map(engine)))
        empty_tables(engine)
    assert outcomes[0] == outcomes[1]
    status, summary, errors_text, births, _ = outcomes[0]
    assert status == 1
    assert "6 created, 1 updated" in summary[0] and "1 failed" in summary[0]
    assert '"line":4,' in errors_text and errors_text.count("\n") == 1


def test_a_pair_written_meanwhile_is_left_alone_and_the_rest_are_written(client, engine):
    """IdMap.flush: a pair another writer stored after the batch's prefetch (the COPY
    refuses it) keeps its target; the batch's other pairs are written all the same."""
    ids = IdMap(["Patient"])
    ids.add("Patient", ["src-a"], "1", "hash-a")
    ids.add("Patient", ["src-b"], "2", "hash-b")
    row = {"source_type": "Patient", "source_id": "src-a", "target_id": "77"}
    with engine.begin() as conn:
        conn.execute(fhir_import_id_map.insert().values(row | {"update_date": utc_now()}))
        ids.flush(conn)
    assert id_map(engine) == {("Patient", "src-a"): "77", ("Patient", "src-b"): "2"}
