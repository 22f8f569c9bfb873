"""Time `codoc-fhir import` on NDJSON of Patients, Procedures and lab Observations.

    nice -n 10 .venv/bin/python bench/ingest.py --resources 20000 --backend postgresql
    nice -n 10 .venv/bin/python bench/ingest.py --resources 20000 --backend sqlite

The data is deterministic (a fixed seed): per patient one Procedure (50 distinct act codes)
and lab Observations of five LOINC codes, one file per type as a Bulk Data export writes
them. Each run imports into a fresh database (PostgreSQL: a database created for the run
and dropped after; SQLite: a new file), through the real command in a child process, and
records the speed and the child's peak resident memory in bench/results/ingest-<backend>.json
(with the machine's load average: the development machine is shared).

On PostgreSQL the same run also measures the floor, in another fresh database: the same
files parsed and their rows written by plain psycopg COPY (a patient row per Patient, a
fact row per Procedure and Observation, the concepts they name), no validation, no
history, no kept elements, no tokens: the least an importer of these files could cost.
The import's speed is reported as a share of it. The ceiling is the files read and parsed
(orjson) and nothing else: what no importer of them can beat.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import psycopg
from sqlalchemy import create_engine, text

ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
RESULTS = Path(__file__).parent / "results"
LOINC = [
    ("2345-7", "Glucose", "mg/dL"),
    ("2160-0", "Creatinine", "mg/dL"),
    ("718-7", "Hemoglobin", "g/dL"),
    ("2951-2", "Sodium", "mmol/L"),
    ("2823-3", "Potassium", "mmol/L"),
]
OBSERVATIONS_PER_PATIENT = 5


def patient(rng: random.Random, n: int) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": f"p{n}",
        "identifier": [{"use": "usual", "system": "urn:bench:ipp", "value": f"IPP{n:08d}"}],
        "name": [{"family": f"Family{rng.randrange(5000)}", "given": [f"Given{n % 977}"]}],
        "gender": rng.choice(["female", "male"]),
        "birthDate": f"{rng.randrange(1930, 2020)}-{rng.randrange(1, 13):02d}-"
        f"{rng.randrange(1, 29):02d}",
    }


def procedure(rng: random.Random, n: int) -> dict[str, Any]:
    code = rng.randrange(50)
    return {
        "resourceType": "Procedure",
        "id": f"proc{n}",
        "status": "completed",
        "code": {
            "coding": [
                {"system": "urn:bench:act", "code": f"ACT{code:03d}", "display": f"Act {code}"}
            ]
        },
        "subject": {"reference": f"Patient/p{n}"},
        "performedDateTime": f"2024-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"
        "T10:00:00+00:00",
    }


def observation(rng: random.Random, n: int, k: int) -> dict[str, Any]:
    code, display, unit = LOINC[k]
    return {
        "resourceType": "Observation",
        "id": f"obs{n}-{k}",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "laboratory",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": display}]},
        "subject": {"reference": f"Patient/p{n}"},
        "effectiveDateTime": f"2024-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"
        "T08:30:00+00:00",
        "valueQuantity": {
            "value": round(rng.uniform(1, 200), 1),
            "unit": unit,
            "system": "http://unitsofmeasure.org",
            "code": unit,
        },
    }


def write_files(directory: Path, resources: int, seed: int) -> list[Path]:
    """Patient, Procedure and Observation NDJSON files holding about `resources` in all."""
    patients = max(1, resources // (2 + OBSERVATIONS_PER_PATIENT))
    rng = random.Random(seed)
    files = {name: directory / f"{name}.ndjson" for name in ("Patient", "Procedure", "Observation")}
    with (
        files["Patient"].open("w") as pat,
        files["Procedure"].open("w") as proc,
        files["Observation"].open("w") as obs,
    ):
        for n in range(patients):
            pat.write(json.dumps(patient(rng, n)) + "\n")
            proc.write(json.dumps(procedure(rng, n)) + "\n")
            for k in range(OBSERVATIONS_PER_PATIENT):
                obs.write(json.dumps(observation(rng, n, k)) + "\n")
    return list(files.values())


def count_lines(paths: list[Path]) -> int:
    return sum(sum(1 for _ in path.open()) for path in paths)


def fresh_database(backend: str, directory: Path, prefix: str = "codoc_ingest") -> Iterator[str]:
    """The URL of an empty database for one run (dropped after, on PostgreSQL)."""
    if backend == "sqlite":
        yield f"sqlite:///{directory / 'bench.db'}"
        return
    name = f"{prefix}_{os.getpid()}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def run_import(
    url: str, paths: list[Path], batch_size: int, profile: Path | None
) -> tuple[float, str]:
    """Run the command in a child process; its wall time (migration excluded, start-up
    included) and its own summary line (the speed it reports, start-up excluded)."""
    migrate(url)
    env = dict(os.environ, CODOC_DATABASE_URL=url)
    command = [sys.executable]
    if profile is not None:
        command += ["-m", "cProfile", "-o", str(profile)]
    command += ["-m", "codoc_fhir.cli", "import", "--quiet", "--batch-size", str(batch_size)]
    started = time.perf_counter()
    done = subprocess.run(command + [str(p) for p in paths], env=env, capture_output=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"import failed ({done.returncode}): {done.stderr.decode()[-2000:]}")
    summary = next(line for line in done.stdout.decode().splitlines() if line.startswith("total:"))
    print(summary)
    return elapsed, summary


def migrate(url: str) -> None:
    env = dict(os.environ, CODOC_DATABASE_URL=url)
    command = [sys.executable, "-m", "codoc_fhir.cli", "migrate"]
    subprocess.run(command, env=env, check=True, capture_output=True)


def floor_copy(url: str, paths: list[Path]) -> float:
    """Parse the files and COPY their rows into the migrated database; the seconds taken."""
    started = time.perf_counter()
    patients: dict[str, int] = {}
    concepts: dict[tuple[str, str], int] = {}
    facts = []
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://", 1)) as conn:
        conn.execute(
            "INSERT INTO dwh_thesaurus (thesaurus_code, label)"
            " VALUES ('Acte', 'Acte'), ('Biologie', 'Biologie')"
        )
        with conn.cursor().copy(
            "COPY dwh_patient (patient_num, lastname, firstname, sex, birth_date,"
            " id_patient_source, update_date) FROM STDIN"
        ) as copy:
            for line in paths[0].open("rb"):
                body = orjson.loads(line)
                num = patients[body["id"]] = len(patients) + 1
                name = body["name"][0]
                row = (num, name["family"], name["given"][0], body["gender"][0].upper())
                copy.write_row((*row, body["birthDate"], body["identifier"][0]["value"], now))
        for path in paths[1:]:
            for line in path.open("rb"):
                body = orjson.loads(line)
                thesaurus = "Acte" if body["resourceType"] == "Procedure" else "Biologie"
                coding = body["code"]["coding"][0]
                key = (thesaurus, coding["code"])
                if key not in concepts:
                    concepts[key] = conn.execute(
                        "INSERT INTO dwh_thesaurus_data (thesaurus_code, concept_code,"
                        " concept_str) VALUES (%s, %s, %s) RETURNING thesaurus_data_num",
                        (*key, coding["display"]),
                    ).fetchone()[0]  # type: ignore[index]
                date = body.get("performedDateTime") or body["effectiveDateTime"]
                value = body.get("valueQuantity") or {}
                patient = patients[body["subject"]["reference"].split("/")[1]]
                row = (patient, concepts[key], thesaurus, date, date)
                facts.append((*row, value.get("value"), value.get("unit"), now))
        with conn.cursor().copy(
            "COPY dwh_data (patient_num, thesaurus_data_num, thesaurus_code, document_date,"
            " start_date, val_numeric, data_unit, update_date) FROM STDIN"
        ) as copy:
            for fact in facts:
                copy.write_row(fact)
    return time.perf_counter() - started


def ceiling_parse(paths: list[Path]) -> float:
    """Read and parse every line of the files; the seconds taken."""
    started = time.perf_counter()
    for path in paths:
        with path.open("rb") as lines:
            for line in lines:
                orjson.loads(line)
    return time.perf_counter() - started


def bound_figures(total: int, elapsed: float, seconds: dict[str, float]) -> dict[str, Any]:
    """The floor's and the ceiling's seconds and speed, and the import's share of each."""
    figures: dict[str, Any] = {}
    for name, taken in seconds.items():
        figures[f"{name}_seconds"] = round(taken, 2)
        figures[f"{name}_resources_per_second"] = round(total / taken)
        figures[f"share_of_{name}"] = round(taken / elapsed, 4)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resources", type=int, default=20_000)
    parser.add_argument("--backend", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--label", default="", help="a name for this run in the results")
    parser.add_argument("--profile", type=Path, help="write a cProfile of the import here")
    parser.add_argument(
        "--database-prefix",
        default="codoc_ingest",
        help="PostgreSQL: the run's databases are <prefix>_<pid> (created, then dropped)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        directory = Path(name)
        paths = write_files(directory, args.resources, args.seed)
        total = count_lines(paths)
        load = os.getloadavg()
        for url in fresh_database(args.backend, directory, args.database_prefix):
            elapsed, summary = run_import(url, paths, args.batch_size, args.profile)
        peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        bounds = {"ceiling": ceiling_parse(paths)}
        if args.backend == "postgresql":
            for url in fresh_database(args.backend, directory, args.database_prefix):
                migrate(url)
                bounds["floor"] = floor_copy(url, paths)
    result = {
        "label": args.label,
        "backend": args.backend,
        "resources": total,
        "batch_size": args.batch_size,
        "seconds": round(elapsed, 2),
        "resources_per_second": round(total / elapsed),
        "reported_by_command": summary,
        "peak_rss_mb": round(peak_kb / 1024, 1),
        **bound_figures(total, elapsed, bounds),
        "load_average_before": [round(value, 2) for value in load],
        "load_average_after": [round(value, 2) for value in os.getloadavg()],
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    print(json.dumps(result))
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"ingest-{args.backend}.json"
    runs = json.loads(path.read_text()) if path.exists() else []
    path.write_text(json.dumps([*runs, result], indent=2) + "\n")


if __name__ == "__main__":
    main()
