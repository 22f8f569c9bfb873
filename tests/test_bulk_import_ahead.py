"""`codoc-fhir import --check-ahead`: the R4B model check of NDJSON lines in a second
process (bulk/ahead.py) changes nothing a user can see: the same rows, answers, counts and
failure report as the importer checking every line itself."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path
from typing import Any

import pytest
from carebundle import generate_cohort, to_ndjson

from codoc_fhir.bulk.ahead import CheckAhead, passed
from codoc_fhir.bulk.files import SourceFile
from codoc_fhir.bulk.importer import Importer, ImportOptions
from codoc_fhir.fhir.errors import FhirError
from codoc_fhir.fhir.json_types import CheckedAhead
from codoc_fhir.fhir.validation import validate_resource
from tests.conftest import empty_tables, make_settings
from tests.test_bulk_import import id_map, simple_patient, write_ndjson

BATCH = 3
TYPES = ("Patient", "Encounter", "Observation", "Condition", "MedicationRequest", "Practitioner")


def refused_patients() -> list[dict[str, Any]]:
    """Patients each check refuses in its own way, each in a batch (of BATCH) of its own
    with good ones: a batch with one refused, once checked ahead, must still refuse it."""
    refused = [
        simple_patient("bad-type") | {"gender": 5},  # the JSON types
        simple_patient("bad-bool") | {"deceasedBoolean": "yes"},  # no lax JSON
        simple_patient("bad-element") | {"colour": "blue"},  # the R4B model
        simple_patient("bad-date") | {"birthDate": "1970-13-01"},
        simple_patient("bad-both") | {"deceasedBoolean": True, "deceasedDateTime": "2020"},
        simple_patient("bad-gender") | {"gender": "bogus"},  # the kind's own check
    ]
    batches = [
        [bad, simple_patient(f"{n}a"), simple_patient(f"{n}b")] for n, bad in enumerate(refused)
    ]
    return [patient for batch in batches for patient in batch]


def files(tmp_path: Path) -> list[Path]:
    streams = to_ndjson(generate_cohort(count=3, seed=7))
    paths = [write_ndjson(tmp_path / "refused.ndjson", refused_patients())]
    for kind in TYPES:
        lines = [json.loads(line) for line in streams.get(kind, "").splitlines() if line]
        paths.append(write_ndjson(tmp_path / f"{kind}.ndjson", lines))
    return paths


def answers(client: Any) -> dict[str, list[Any]]:
    """Every resource of each type as the API answers it, meta (timestamps) left out."""
    found = {}
    for kind in TYPES:
        bundle = client.get(f"/v4.3.0/{kind}?_count=1000&_sort=_id").json()
        resources = [entry["resource"] for entry in bundle.get("entry", [])]
        found[kind] = [{k: v for k, v in item.items() if k != "meta"} for item in resources]
    return found


def import_with(mode: str, database_url: str, paths: list[Path], errors: Path) -> Importer:
    options = ImportOptions(
        quiet=True, continue_on_error=True, errors_path=errors, check_ahead=mode, batch_size=BATCH
    )
    importer = Importer(make_settings(database_url), options)
    try:
        importer.run(paths)
    finally:
        importer.engine.dispose()
    return importer


def test_the_check_ahead_stores_and_reports_what_the_importer_alone_does(
    client, engine, database_url, tmp_path
):
    paths = files(tmp_path)
    outcomes = []
    for mode in ("off", "on"):
        errors = tmp_path / f"errors-{mode}.ndjson"
        importer = import_with(mode, database_url, paths, errors)
        counts = [(file.path.name, file.counters.text()) for file in importer.files]
        outcomes.append((counts, errors.read_text(), answers(client), id_map(engine)))
        if mode == "off":
            assert importer.checked_ahead == 0
        else:  # every create of a line that passes both checks skipped them here
            created = importer.totals.created
            assert 0 < importer.checked_ahead <= created
        empty_tables(engine)
    assert outcomes[0] == outcomes[1]
    counts, errors_text, found, _ = outcomes[0]
    assert ("refused.ndjson", "12 created, 0 skipped (already imported), 6 failed") in counts
    failures = [json.loads(line) for line in errors_text.splitlines()]
    assert len(failures) == 6 and all(item["file"].endswith("refused.ndjson") for item in failures)
    assert found["Observation"] and found["Encounter"]


def test_only_the_very_bodies_checked_ahead_skip_the_checks():
    body = simple_patient("x") | {"gender": 5}
    with CheckedAhead([body]):
        assert validate_resource(body, "Patient") is body
        with pytest.raises(FhirError, match="gender"):
            validate_resource(dict(body), "Patient")  # an equal copy is checked
    with pytest.raises(FhirError, match="gender"):
        validate_resource(body, "Patient")  # and the body itself, outside the block


def test_a_line_passes_ahead_only_as_the_import_writes_it():
    good = simple_patient("x") | {"meta": {"versionId": "7"}}  # meta is dropped on import
    lines = [
        json.dumps(good).encode(),
        json.dumps(simple_patient("y") | {"gender": 5}).encode(),
        None,  # a blank or unreadable line
        b'{"resourceType": "NotAType"}',
        b'"not an object"',
    ]
    assert passed(lines) == bytes([1, 0, 0, 0, 0])


def test_a_checking_process_that_dies_leaves_the_checks_to_the_importer(tmp_path):
    path = write_ndjson(tmp_path / "Patient.ndjson", [simple_patient(f"p{n}") for n in range(40)])
    ahead = CheckAhead("on")
    try:
        batches = ahead.batches(SourceFile(path).records_and_lines(0), 2, ahead=True)
        _, first = next(batches)
        assert first.positions() == {1, 2}
        for child in multiprocessing.active_children():
            child.kill()
            child.join()
        rest = list(batches)  # no wait forever: the batches after it are not vouched for
        assert rest[-1][1].positions() == set()
        assert not ahead.wanted(10**9)
    finally:
        ahead.close()
