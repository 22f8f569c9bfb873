"""Time transaction Bundles of 100 entries against one-by-one creates, on PostgreSQL.

    .venv/bin/python bench/transactions.py --bundles 30 --rounds 3

Each Bundle is what a Synthea-style exporter posts: one Patient with a `urn:uuid` fullUrl
and 99 Procedures whose subject names it by that urn. The reference of the same run is the
same 100 resources posted one request at a time (`POST /Patient`, then `POST /Procedure`
naming the new id). Both run against `codoc-fhir serve` (2 workers, rate limit on with a
limit no run reaches, access log on) on a fresh database, alternated round by round from
`--clients` threads, so the machine's drift falls on both alike.

Alternated with them, from the same threads:
- the floor: each Bundle's rows written straight with psycopg, no HTTP, no validation, no
  mapping: one statement per Bundle (autocommitted) inserting the patient, its 99 facts
  with their concepts looked up inside the INSERT, and the 100 history rows keeping each
  entry's JSON as posted;
- the ceiling: the same Bundles posted to bench/ceiling.py (served like the API), which
  parses each and answers a pre-built transaction-response of as many entries.

Resources created per second, the median round, go to
bench/results/transactions-postgresql.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from psycopg_pool import ConnectionPool
from servers import HIGH_LIMIT, api_server, ceiling_server, fresh_database, machine

ADMIN_URL = os.environ.get(
    "CODOC_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
DATABASE = "codoc_bench_transactions"
CODE_SYSTEM = "urn:codoc:fhir:codesystem:Acte"
CODES = [f"TX{number:04d}" for number in range(20)]
ROUND_ORDER = ("floor", "ceiling", "transaction", "one_by_one")
ENV = {"CODOC_RATE_LIMIT_STORE": "local", "CODOC_RATE_LIMIT_ANONYMOUS": HIGH_LIMIT}


def patient(serial: str) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": "urn:bench:ipp", "value": serial, "use": "official"}],
        "gender": "female",
        "birthDate": "1970-01-01",
    }


def procedure(subject: str, index: int) -> dict[str, Any]:
    return {
        "resourceType": "Procedure",
        "status": "completed",
        "code": {"coding": [{"system": CODE_SYSTEM, "code": CODES[index % len(CODES)]}]},
        "subject": {"reference": subject},
        "performedDateTime": f"2024-03-{index % 27 + 1:02d}T10:30:00Z",
    }


def bundle(size: int) -> dict[str, Any]:
    """One Patient and `size - 1` Procedures naming it by its urn:uuid."""
    urn = f"urn:uuid:{uuid.uuid4()}"
    entries = [
        {
            "fullUrl": urn,
            "resource": patient(urn[9:]),
            "request": {"method": "POST", "url": "Patient"},
        }
    ]
    entries += [
        {"resource": procedure(urn, index), "request": {"method": "POST", "url": "Procedure"}}
        for index in range(size - 1)
    ]
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def post_bundle(client: httpx.Client, size: int) -> int:
    answer = client.post("/v4.3.0", json=bundle(size))
    answer.raise_for_status()
    return size


def post_one_by_one(client: httpx.Client, size: int) -> int:
    created = client.post("/v4.3.0/Patient", json=patient(str(uuid.uuid4())))
    created.raise_for_status()
    subject = f"Patient/{created.json()['id']}"
    for index in range(size - 1):
        client.post("/v4.3.0/Procedure", json=procedure(subject, index)).raise_for_status()
    return size


FLOOR_SQL = """
WITH patient AS (
    INSERT INTO dwh_patient (update_date) VALUES (now()) RETURNING patient_num
), facts AS (
    INSERT INTO dwh_data (patient_num, thesaurus_data_num, thesaurus_code, document_date,
                          start_date, update_date)
    SELECT patient.patient_num, concept.thesaurus_data_num, concept.thesaurus_code,
           item.start, item.start, now()
    FROM patient
    CROSS JOIN unnest(%(codes)s::text[], %(starts)s::timestamptz[]) AS item(code, start)
    JOIN dwh_thesaurus_data AS concept
      ON concept.thesaurus_code = 'Acte' AND concept.concept_code = item.code
    RETURNING data_num, patient_num
), numbered AS (
    SELECT data_num, patient_num, row_number() OVER (ORDER BY data_num) AS position
    FROM facts
)
INSERT INTO dwh_resource_history (fhir_type, fhir_id, table_name, table_key, patient_num,
                                  version_id, method, history_date, resource_json)
SELECT 'Patient', patient_num::text, 'dwh_patient', patient_num, patient_num, 1, 'POST',
       now(), %(patient_json)s
FROM patient
UNION ALL
SELECT 'Procedure', data_num::text, 'dwh_data', data_num, patient_num, 1, 'POST', now(),
       (%(jsons)s::text[])[position]
FROM numbered
RETURNING 1
"""


def floor_bundle(pool: ConnectionPool, size: int) -> int:
    """The floor of one Bundle: its rows in one autocommitted statement (module docstring)."""
    entries = bundle(size)["entry"]
    procedures = [entry["resource"] for entry in entries[1:]]
    values = {
        "patient_json": json.dumps(entries[0]["resource"]),
        "codes": [body["code"]["coding"][0]["code"] for body in procedures],
        "starts": [body["performedDateTime"] for body in procedures],
        "jsons": [json.dumps(body) for body in procedures],
    }
    with pool.connection() as conn:
        written = len(conn.execute(FLOOR_SQL, values).fetchall())
    if written != size:  # a code the warm-up did not create: the floor would write less
        raise SystemExit(f"the floor wrote {written} rows of {size}")
    return size


def timed_floor(pool: ConnectionPool, count: int, clients: int, size: int) -> float:
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as threads:
        created = sum(threads.map(lambda _: floor_bundle(pool, size), range(count)))
    return created / (time.perf_counter() - started)


def timed(base_url: str, work: Any, count: int, clients: int, size: int) -> float:
    """Resources created per second by `clients` threads doing `work` `count` times."""
    with httpx.Client(base_url=base_url, timeout=120) as client:
        started = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            created = sum(pool.map(lambda _: work(client, size), range(count)))
        return created / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--bundles", type=int, default=30, help="Bundles per round")
    parser.add_argument("--size", type=int, default=100, help="entries per Bundle")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=4, help="concurrent client threads")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument(
        "--database", default=DATABASE, help="the database to create (dropped first) and fill"
    )
    args = parser.parse_args()
    url = fresh_database(ADMIN_URL, args.database)
    log = Path("/tmp/codoc-bench-transactions.log")
    rounds: dict[str, list[float]] = {name: [] for name in ROUND_ORDER}
    load_at_start = os.getloadavg()
    conninfo = url.replace("postgresql+psycopg://", "postgresql://", 1)
    pool = ConnectionPool(conninfo, min_size=args.clients, kwargs={"autocommit": True})
    with (
        api_server(url, args.workers, log, ENV) as base_url,
        ceiling_server(args.workers, Path("/tmp/codoc-bench-ceiling.log")) as ceiling_url,
        pool,
    ):
        timed(base_url, post_bundle, 2, 1, args.size)  # warm up: codes created, pools open
        for number in range(1, args.rounds + 1):
            for name in ROUND_ORDER:
                if name == "floor":
                    rate = timed_floor(pool, args.bundles, args.clients, args.size)
                else:
                    work = post_one_by_one if name == "one_by_one" else post_bundle
                    target = ceiling_url if name == "ceiling" else base_url
                    rate = timed(target, work, args.bundles, args.clients, args.size)
                rounds[name].append(rate)
                print(f"round {number}: {name}: {rate:,.0f} resources/s", flush=True)
    medians = {name: statistics.median(runs) for name, runs in rounds.items()}
    result = {
        "machine": machine(),
        "workers": args.workers,
        "clients": args.clients,
        "bundle_size": args.size,
        "bundles_per_round": args.bundles,
        "resources_per_second": medians,
        "transaction_to_floor": round(medians["transaction"] / medians["floor"], 3),
        "transaction_to_ceiling": round(medians["transaction"] / medians["ceiling"], 3),
        "rounds": rounds,
        "load_average": {"start": load_at_start, "end": os.getloadavg()},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "transactions-postgresql.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["resources_per_second"]))


if __name__ == "__main__":
    main()
