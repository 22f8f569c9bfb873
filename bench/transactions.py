"""Time transaction Bundles of 100 entries against one-by-one creates, on PostgreSQL.

    .venv/bin/python bench/transactions.py --bundles 30 --rounds 3

Each Bundle is what a Synthea-style exporter posts: one Patient with a `urn:uuid` fullUrl
and 99 Procedures whose subject names it by that urn. The reference of the same run is the
same 100 resources posted one request at a time (`POST /Patient`, then `POST /Procedure`
naming the new id). Both run against `codoc-fhir serve` (2 workers, rate limit on with a
limit no run reaches, access log on) on a fresh database, alternated round by round from
`--clients` threads, so the machine's drift falls on both alike. Resources created per
second, the median round, go to bench/results/transactions-postgresql.json.
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
from servers import HIGH_LIMIT, api_server, fresh_database, machine

ADMIN_URL = os.environ.get(
    "CODOC_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
DATABASE = "codoc_bench_transactions"
CODE_SYSTEM = "urn:codoc:fhir:codesystem:Acte"
CODES = [f"TX{number:04d}" for number in range(20)]
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
    rounds: dict[str, list[float]] = {"transaction": [], "one_by_one": []}
    load_at_start = os.getloadavg()
    with api_server(url, args.workers, log, ENV) as base_url:
        timed(base_url, post_bundle, 2, 1, args.size)  # warm up: codes created, pools open
        for number in range(1, args.rounds + 1):
            for name, work in (("transaction", post_bundle), ("one_by_one", post_one_by_one)):
                rate = timed(base_url, work, args.bundles, args.clients, args.size)
                rounds[name].append(rate)
                print(f"round {number}: {name}: {rate:,.0f} resources/s", flush=True)
    result = {
        "machine": machine(),
        "workers": args.workers,
        "clients": args.clients,
        "bundle_size": args.size,
        "bundles_per_round": args.bundles,
        "resources_per_second": {name: statistics.median(runs) for name, runs in rounds.items()},
        "rounds": rounds,
        "load_average": {"start": load_at_start, "end": os.getloadavg()},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "transactions-postgresql.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["resources_per_second"]))


if __name__ == "__main__":
    main()
