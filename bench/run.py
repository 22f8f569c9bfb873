"""The benchmark: fill, serve, load with wrk, write bench/results/<backend>.json.

    .venv/bin/python bench/run.py                      # both backends, full scale
    .venv/bin/python bench/run.py --backends sqlite --patients 2000 --facts 20000 --seconds 3

For each backend: fill a warehouse (bench/fill.py) at full scale and a small one
(--small-facts, same facts per patient); then read by id on the floor (bench/floor.py, a
plain ASGI app on psycopg's async pool, PostgreSQL only), the ceiling (bench/ceiling.py, no
database) and `codoc-fhir serve` (rate limiting on with a high limit, access log on; also
with its fast read off, --generic), all served with the same workers and alternated for
--rounds rounds so that the machine's drift cancels; then on the API under wrk: search by
subject, by subject and date, create, each at --connections connections (throughput) and
at one (latency); page a code+date search to its end; and time the subject+date search on
the small warehouse to show whether search latency stays flat as the tables grow.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from urllib.parse import quote

import fill
import httpx
import orjson
import servers
from sqlalchemy import create_engine, func, select, text

from codoc_fhir.warehouse.schema import dwh_data, dwh_thesaurus_data

RESULTS = servers.BENCH_DIR / "results"
PG_ADMIN = os.environ.get(
    "CODOC_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
YEAR = ("2023-01-01", "2024-01-01")
DATE_FILTER = f"date=ge{YEAR[0]}&date=lt{YEAR[1]}"
CODE_SYSTEM = "urn:codoc:fhir:codesystem:Acte"
WARM_UP_SECONDS = 3  # an unrecorded wrk run before each measured one


class Sample:
    """Ids, patients and codes drawn from a filled warehouse, deterministically."""

    def __init__(self, url: str, patients: int, seed: int, size: int = 5000) -> None:
        rng = random.Random(seed)
        engine = create_engine(url)
        with engine.connect() as conn:
            ids = conn.scalars(
                select(dwh_data.c.data_num).where(dwh_data.c.thesaurus_code == "Acte")
            ).all()
            top = conn.execute(
                select(dwh_data.c.thesaurus_data_num, func.count())
                .where(dwh_data.c.thesaurus_code == "Acte")
                .group_by(dwh_data.c.thesaurus_data_num)
                .order_by(func.count().desc())
                .limit(1)
            ).one()
            self.code = conn.scalar(
                select(dwh_thesaurus_data.c.concept_code).where(
                    dwh_thesaurus_data.c.thesaurus_data_num == top[0]
                )
            )
            self.code_year_count = conn.scalar(
                select(func.count()).where(dwh_data.c.thesaurus_data_num == top[0], *year_filter())
            )
            self.codes = conn.scalars(
                select(dwh_thesaurus_data.c.concept_code)
                .where(dwh_thesaurus_data.c.thesaurus_code == "Acte")
                .order_by(dwh_thesaurus_data.c.thesaurus_data_num)
                .limit(200)
            ).all()
        engine.dispose()
        self.ids = rng.sample(list(ids), min(size, len(ids)))
        self.patients = [rng.randint(1, patients) for _ in range(size)]
        # The creates go to patients the searches do not ask for: a run with --no-fill after
        # another would otherwise search patients whose Procedures the earlier runs' creates
        # multiplied.
        searched = set(self.patients)
        unsearched = [num for num in range(1, patients + 1) if num not in searched]
        self.creating = rng.sample(unsearched, min(2000, len(unsearched)))
        self.rng = rng

    def procedure_body(self, patient: int) -> bytes:
        """A Procedure a client would POST: status, CCAM code, subject, date, performer."""
        day = self.rng.randrange(1, 28)
        return orjson.dumps(
            {
                "resourceType": "Procedure",
                "status": "completed",
                "code": {"coding": [{"system": CODE_SYSTEM, "code": self.rng.choice(self.codes)}]},
                "subject": {"reference": f"Patient/{patient}"},
                "performedDateTime": f"2024-03-{day:02d}T10:30:00Z",
                "performer": [{"actor": {"reference": "Organization/department-1"}}],
            }
        )


def year_filter() -> list[Any]:
    from datetime import UTC, datetime

    start, end = (datetime.fromisoformat(day).replace(tzinfo=UTC) for day in YEAR)
    return [dwh_data.c.start_date >= start, dwh_data.c.start_date < end]


def scenario_lines(sample: Sample) -> dict[str, list[str]]:
    """The requests of each wrk scenario, one per line."""
    base = "/v4.3.0/Procedure"
    return {
        "read": [f"GET {base}/{num}" for num in sample.ids],
        "search_subject": [f"GET {base}?subject=Patient/{n}" for n in sample.patients],
        "search_subject_date": [
            f"GET {base}?subject=Patient/{n}&{DATE_FILTER}" for n in sample.patients
        ],
        "create": [f"POST {base} {sample.procedure_body(n).decode()}" for n in sample.creating],
    }


def probe(base_url: str, line: str) -> dict[str, Any]:
    """One request of a scenario: is the interaction there at all?"""
    method, path, *body = line.split(" ", 2)
    headers = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
    answer = httpx.request(method, base_url + path, content=body[0] if body else None,
                           headers=headers, timeout=30)  # fmt: skip
    if answer.status_code < 300:
        return {"available": True}
    try:
        diagnostics = answer.json()["issue"][0].get("diagnostics")
    except (ValueError, KeyError, IndexError):
        diagnostics = answer.text[:300]
    return {"available": False, "status": answer.status_code, "diagnostics": diagnostics}


def measure(base_url: str, lines: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """Throughput at --connections, latency at one connection (or why it is not available)."""
    found = probe(base_url, lines[0])
    if not found["available"]:
        print(f"    not available: {found}", flush=True)
        return found
    # Not recorded: the pages the scenario reads, brought back into memory first (this VM
    # reclaims the page cache of files left idle, and the first pass would read from disk).
    servers.run_wrk(base_url, lines, WARM_UP_SECONDS, args.connections)
    loaded = servers.run_wrk(base_url, lines, args.seconds, args.connections)
    single = servers.run_wrk(base_url, lines, args.seconds, 1)
    print(f"    {loaded['throughput_rps']:>8} req/s at {args.connections} connections, "
          f"p50/p95/p99 {_ms(single)} ms at 1", flush=True)  # fmt: skip
    return {"available": True, "loaded": loaded, "single": single}


def _ms(result: dict[str, Any]) -> str:
    latency = result["latency_ms"]
    return f"{latency['p50']}/{latency['p95']}/{latency['p99']}"


def page_to_end(base_url: str, sample: Sample, rounds: int = 3) -> dict[str, Any]:
    """Search by code+date with _count=100, following next links; per-page latency."""
    token = quote(f"{CODE_SYSTEM}|{sample.code}", safe="")
    first = f"{base_url}/v4.3.0/Procedure?code={token}&{DATE_FILTER}&_count=100"
    found = probe(base_url, f"GET {first.removeprefix(base_url)}")
    if not found["available"]:
        return found
    pages: list[float] = []
    totals: list[float] = []
    entries = 0
    with httpx.Client(timeout=60, headers={"Accept": "application/fhir+json"}) as client:
        for _ in range(rounds):
            url: str | None = first
            entries, started = 0, time.perf_counter()
            while url:
                clock = time.perf_counter()
                bundle = client.get(url).raise_for_status().json()
                pages.append((time.perf_counter() - clock) * 1000)
                entries += len(bundle.get("entry") or [])
                url = next((x["url"] for x in bundle.get("link", []) if x["relation"] == "next"),
                           None)  # fmt: skip
            totals.append((time.perf_counter() - started) * 1000)
    pages.sort()
    return {
        "available": True,
        "code": sample.code,
        "entries": entries,
        "expected_entries": sample.code_year_count,
        "pages_per_round": len(pages) // rounds,
        "rounds": rounds,
        "page_latency_ms": {
            "p50": round(pages[len(pages) // 2], 2),
            "p95": round(pages[int(len(pages) * 0.95)], 2),
            "max": round(pages[-1], 2),
        },
        "round_total_ms": [round(total, 1) for total in totals],
    }


def database_urls(backend: str, args: argparse.Namespace) -> tuple[str, str]:
    """The full-scale and the small database of a backend (PostgreSQL ones created)."""
    if backend == "sqlite":
        folder = Path(args.sqlite_dir)
        return (
            f"sqlite:///{folder / 'codoc_bench.db'}",
            f"sqlite:///{folder / 'codoc_bench_small.db'}",
        )
    admin = create_engine(args.pg_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for name in (args.pg_database, f"{args.pg_database}_small"):
            if not conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}):
                conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    root = args.pg_admin_url.rsplit("/", 1)[0]
    return f"{root}/{args.pg_database}", f"{root}/{args.pg_database}_small"


def database_version(url: str) -> str:
    engine = create_engine(url)
    query = (
        "SHOW server_version" if engine.dialect.name == "postgresql" else "SELECT sqlite_version()"
    )
    with engine.connect() as conn:
        version = str(conn.scalar(text(query)))
    engine.dispose()
    return f"{engine.dialect.name} {version}"


def bench_backend(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    url, small_url = database_urls(backend, args)
    workers = args.sqlite_workers if backend == "sqlite" else args.pg_workers
    small_patients = max(1, args.patients * args.small_facts // args.facts)
    result: dict[str, Any] = {"backend": backend, "workers": workers, "machine": servers.machine()}
    result["dataset"] = {
        "patients": args.patients,
        "facts": args.facts,
        "seed": args.seed,
        "small": {"patients": small_patients, "facts": args.small_facts},
    }
    if not args.no_fill:
        print(f"== {backend}: filling {args.facts:,} facts", flush=True)
        result["fill"] = fill.fill(url, args.patients, args.facts, args.seed)
        result["fill_small"] = fill.fill(small_url, small_patients, args.small_facts, args.seed)
    sample = Sample(url, args.patients, args.seed)
    result["database_version"] = database_version(url)
    lines = scenario_lines(sample)
    logs = Path(args.sqlite_dir)
    with ExitStack() as stack:
        bases = read_targets(stack, backend, url, workers, logs, sample.ids[0], args)
        print(f"== {backend}: read by id, {', '.join(bases)} alternated ({workers} workers)")
        alternated = alternate(bases, lines["read"], args)
        result["read_alternated"] = alternated
        if "floor" in alternated["targets"]:
            result["floor"] = alternated["targets"]["floor"]
            result["floor_same_json"] = same_json(bases["floor"], bases["api"], sample.ids[:20])
        result["ceiling"] = alternated["targets"]["ceiling"]
        scenarios: dict[str, Any] = {"read": alternated["targets"]["api"]}
        base = bases["api"]
        others = () if args.only_read else ("search_subject", "search_subject_date")
        for name in others:
            print(f"== {backend}: {name}", flush=True)
            scenarios[name] = measure(base, lines[name], args)
        if not args.only_read:
            creating = {name: bases[name] for name in ("floor", "ceiling", "api") if name in bases}
            print(f"== {backend}: create, {', '.join(creating)} alternated", flush=True)
            result["create_alternated"] = alternate(creating, lines["create"], args)
            scenarios["create"] = result["create_alternated"]["targets"]["api"]
            print(f"== {backend}: code+date paged to the end", flush=True)
            scenarios["search_code_date_paged"] = page_to_end(base, sample)
    result["scenarios"] = scenarios
    result["ceiling_ratio"] = ceiling_ratio(result["ceiling"], scenarios["read"])
    if "floor" in result:
        result["floor_ratio"] = ceiling_ratio(result["floor"], scenarios["read"])
    if "create_alternated" in result:
        result["create_ratios"] = create_ratios(result["create_alternated"]["targets"])
    if args.only_read:  # --only read: the alternated rounds and nothing else
        result["load_average_at_end"] = [round(value, 2) for value in os.getloadavg()]
        return result
    small = Sample(small_url, small_patients, args.seed)
    with servers.api_server(small_url, workers, logs / f"api_small_{backend}.log") as base:
        print(f"== {backend}: subject+date on {args.small_facts:,} facts", flush=True)
        small_run = measure(base, scenario_lines(small)["search_subject_date"], args)
    result["flatness"] = flatness(scenarios["search_subject_date"], small_run, args)
    result["load_average_at_end"] = [round(value, 2) for value in os.getloadavg()]
    return result


def read_targets(
    stack: ExitStack,
    backend: str,
    url: str,
    workers: int,
    logs: Path,
    probe_id: int,
    args: argparse.Namespace,
) -> dict[str, str]:
    """The servers read by id is measured on, all running at once: the floor (PostgreSQL
    only: it is a psycopg app), the ceiling, the API and (--generic) the API with its fast
    read turned off."""
    bases: dict[str, str] = {}
    if backend == "postgresql":
        floor_log = logs / f"floor_{backend}.log"
        bases["floor"] = stack.enter_context(
            servers.floor_server(url, workers, floor_log, probe_id)
        )
    ceiling_log = logs / f"ceiling_{backend}.log"
    bases["ceiling"] = stack.enter_context(servers.ceiling_server(workers, ceiling_log))
    api_log = logs / f"api_{backend}.log"
    bases["api"] = stack.enter_context(servers.api_server(url, workers, api_log))
    if args.generic and backend == "postgresql":
        generic_log = logs / f"api_generic_{backend}.log"
        off = {"CODOC_FAST_READ": "false"}
        bases["api_generic"] = stack.enter_context(
            servers.api_server(url, workers, generic_log, off)
        )
    return bases


def alternate(bases: dict[str, str], lines: list[str], args: argparse.Namespace) -> dict:
    """`lines` (the reads by id, or the creates) on every target in turn (floor, ceiling,
    API, ...), --rounds times, so that the machine's drift over the run falls on all of
    them alike. Each target's figure is the median of its rounds (throughput at
    --connections, p50 at one connection)."""
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in bases}
    for round_number in range(1, args.rounds + 1):
        for name, base in bases.items():
            found = measure(base, lines, args)
            if not found["available"]:
                raise SystemExit(f"{name} does not answer a read by id: {found}")
            runs[name].append(found)
            print(f"    round {round_number}: {name}", flush=True)
    targets = {name: median_run(found) for name, found in runs.items()}
    return {"rounds": args.rounds, "order": list(bases), "targets": targets, "runs": runs}


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median round: the loaded run of median throughput, the single-connection run of
    median p50 (each a whole wrk run, never an average of runs)."""
    loaded = sorted((run["loaded"] for run in runs), key=lambda run: run["throughput_rps"])
    single = sorted((run["single"] for run in runs), key=lambda run: run["latency_ms"]["p50"])
    return {
        "available": True,
        "loaded": loaded[len(loaded) // 2],
        "single": single[len(single) // 2],
        "throughput_rounds": [run["loaded"]["throughput_rps"] for run in runs],
    }


def same_json(floor: str, api: str, ids: list[int]) -> bool:
    """Whether the floor answers the API's JSON (and ETag) for these Procedures."""
    for num in ids:
        answers = [httpx.get(f"{base}/v4.3.0/Procedure/{num}", timeout=30) for base in (floor, api)]
        if answers[0].json() != answers[1].json():
            return False
        if answers[0].headers["etag"] != answers[1].headers["etag"]:
            return False
    return True


def flatness(big: dict[str, Any], small: dict[str, Any], args: argparse.Namespace) -> dict:
    """Subject+date search latency (one connection) on the small and the full warehouse."""
    if not (big.get("available") and small.get("available")):
        return {"available": False}
    big_ms, small_ms = big["single"]["latency_ms"], small["single"]["latency_ms"]
    return {
        "available": True,
        "scenario": "search_subject_date, 1 connection",
        f"facts_{args.small_facts}": small_ms,
        f"facts_{args.facts}": big_ms,
        "p50_ratio": round(big_ms["p50"] / small_ms["p50"], 2),
        "p95_ratio": round(big_ms["p95"] / small_ms["p95"], 2),
    }


def create_ratios(targets: dict[str, Any]) -> dict[str, float]:
    """The API's create throughput as a share of the create floor and ceiling of the run."""
    api = targets["api"]["loaded"]["throughput_rps"]
    return {
        f"api_to_{name}": round(api / targets[name]["loaded"]["throughput_rps"], 3)
        for name in ("floor", "ceiling")
        if name in targets
    }


def ceiling_ratio(ceiling: dict[str, Any], read: dict[str, Any]) -> dict[str, Any]:
    """Read by id as a share of the ceiling or the floor (throughput, and latency the other
    way round)."""
    if not read.get("available"):
        return {"available": False}
    return {
        "read_throughput": round(
            read["loaded"]["throughput_rps"] / ceiling["loaded"]["throughput_rps"], 3
        ),
        "read_p50_single": round(
            ceiling["single"]["latency_ms"]["p50"] / read["single"]["latency_ms"]["p50"], 3
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--facts", type=int, default=1_000_000)
    parser.add_argument("--small-facts", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--seconds", type=int, default=10, help="length of each wrk run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3, help="alternated read-by-id rounds")
    parser.add_argument(
        "--generic",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also measure the API with its fast read off (CODOC_FAST_READ=false)",
    )
    parser.add_argument("--sqlite-workers", type=int, default=1)
    parser.add_argument("--pg-workers", type=int, default=2)
    parser.add_argument("--pg-admin-url", default=PG_ADMIN)
    parser.add_argument("--pg-database", default="codoc_bench", help="and <name>_small")
    parser.add_argument("--sqlite-dir", default="/tmp", help="SQLite files and server logs")
    parser.add_argument("--no-fill", action="store_true", help="reuse the filled databases")
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument(
        "--only",
        choices=["read"],
        help="read: only the alternated read-by-id rounds (a short run, ~3 min at --rounds 3)",
    )
    args = parser.parse_args()
    args.only_read = args.only == "read"
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk (Debian/Ubuntu)")
    for backend in args.backends.split(","):
        result = bench_backend(backend.strip(), args)
        path = Path(args.out) / f"{backend.strip()}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2) + "\n")
        print(f"== {backend}: written {path}", flush=True)


if __name__ == "__main__":
    main()
