"""Time Bulk Data `$export` over a bench warehouse: resources/s and peak memory.

    nice -n 10 .venv/bin/python bench/export.py \
        --url postgresql+psycopg://postgres@127.0.0.1:5432/codoc_bench_export \
        --compare /path/to/old/src --rounds 2

Fill the database first (bench/fill.py). Each measurement runs in a child process of its
own (so its peak RSS is its own): a job row is created and the export is run to the end
in that process, exactly as the kick-off's background thread runs it (the job runner, its
files, its cancellation checks), without HTTP. Scenarios: the system `$export` (every type)
and `Patient/$export` (the Patient compartment types). With `--compare`, the code under
that `src` directory (an older checkout) is measured too, alternated with this one round
after round, so the drift of a shared machine falls on both. Each round also measures,
for each scenario, in the same way:

- the floor: plain psycopg streaming the same rows (the export's SELECT of each table,
  2,000 rows a fetch) as NDJSON of the raw rows, no mapping: the least any exporter of
  these rows could cost;
- the ceiling: as many pre-rendered lines (bench/ceiling.py's Procedure) written to a
  file, no database: the most the file writing allows.

Results, with the load average and the ratios, go to bench/results/export-<backend>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
NEW_SRC = HERE.parent / "src"
SCENARIOS = ("system", "patient")
REFERENCES = ("floor", "ceiling")
CHILD_RUNS = (*SCENARIOS, "stages", *(f"{ref}-{name}" for ref in REFERENCES for name in SCENARIOS))


def _runner() -> Any:
    """`run_export` and the job helpers of the code on sys.path (bulk/ now, api/ before)."""
    try:
        from codoc_fhir.bulk import export, export_jobs

        return export.run_export, export_jobs, export.exported_kinds
    except ImportError:  # a checkout from before the move to bulk/
        from codoc_fhir.api import export_jobs as old

        return old.run_export, old, old.exported_kinds


def measure(url: str, scenario: str) -> dict[str, Any]:
    """Run one export to the end in this process: resources, seconds, peak RSS."""
    from codoc_fhir.config import Settings
    from codoc_fhir.resources.registry import build_registry
    from codoc_fhir.warehouse.db import make_engine

    run_export, jobs, exported_kinds = _runner()
    engine = make_engine(url)
    registry = build_registry(Settings(CODOC_DATABASE_URL=url), "bench")
    patient_level = scenario == "patient"
    types = [name for name in registry.types if exported_kinds(registry, name, patient_level)]
    request = jobs.ExportRequest(
        types=types,
        since=None,
        patient=None,
        patient_level=patient_level,
        owner="bench",
        request_url=f"bench {scenario}",
    )
    with engine.begin() as conn:
        num = jobs.create_job(conn, request)
    with tempfile.TemporaryDirectory() as root:
        started, cpu_started = time.perf_counter(), time.process_time()
        run_export(engine, registry, root, num, request)
        seconds = time.perf_counter() - started
        cpu_seconds = time.process_time() - cpu_started
        with engine.connect() as conn:
            job = jobs.fetch_job(conn, num)
            jobs.delete_job(conn, root, job)
            conn.commit()
    resources = sum(item["count"] for item in jobs.job_outputs(job))
    return {
        "scenario": scenario,
        "status": job["status"],
        "resources": resources,
        "seconds": round(seconds, 2),
        "resources_per_s": round(resources / seconds),
        # this process's CPU (not PostgreSQL's): what a busy shared machine changes least
        "cpu_seconds": round(cpu_seconds, 2),
        "resources_per_cpu_s": round(resources / cpu_seconds),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def export_queries(url: str, patient_level: bool) -> list[str]:
    """The SQL each kind of the scenario streams, compiled by the exporter's own code."""
    from sqlalchemy.dialects import postgresql

    from codoc_fhir.bulk import export
    from codoc_fhir.config import Settings
    from codoc_fhir.resources.registry import build_registry

    registry = build_registry(Settings(CODOC_DATABASE_URL=url), "bench")
    queries = []
    for name in registry.types:
        for kind in export.exported_kinds(registry, name, patient_level):
            query = kind.base_query().where(export.rows_clause(kind, None, None, None))
            compiled = query.order_by(kind.key).compile(
                dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}
            )
            queries.append(str(compiled))
    return queries


def floor(url: str, scenario: str) -> dict[str, Any]:
    """The same rows streamed by plain psycopg (a server-side cursor) as raw NDJSON."""
    import orjson
    import psycopg
    from psycopg.rows import dict_row

    queries = export_queries(url, scenario == "patient")
    conninfo = url.replace("postgresql+psycopg://", "postgresql://", 1)
    resources = 0
    with tempfile.TemporaryDirectory() as root, psycopg.connect(conninfo) as conn:
        started, cpu_started = time.perf_counter(), time.process_time()
        for number, sql in enumerate(queries):
            with (
                open(f"{root}/{number}.ndjson", "wb", buffering=1 << 20) as out,
                conn.cursor(name=f"floor{number}", row_factory=dict_row) as cursor,
            ):
                cursor.execute(sql.encode())
                while rows := cursor.fetchmany(2000):
                    out.write(b"".join([orjson.dumps(row) + b"\n" for row in rows]))
                    resources += len(rows)
        return timed(scenario, resources, started, cpu_started)


def ceiling(scenario: str, resources: int) -> dict[str, Any]:
    """`resources` pre-rendered lines written to a file: no database, no mapping."""
    import orjson
    from ceiling import PROCEDURE

    line = orjson.dumps(PROCEDURE) + b"\n"
    with tempfile.TemporaryDirectory() as root, open(f"{root}/x.ndjson", "wb") as out:
        started, cpu_started = time.perf_counter(), time.process_time()
        for written in range(0, resources, 2000):
            out.write(line * min(2000, resources - written))
        return timed(scenario, resources, started, cpu_started)


def timed(scenario: str, resources: int, started: float, cpu_started: float) -> dict[str, Any]:
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    return {
        "scenario": scenario,
        "resources": resources,
        "seconds": round(seconds, 2),
        "resources_per_s": round(resources / seconds),
        "cpu_seconds": round(cpu_seconds, 2),
        "resources_per_cpu_s": round(resources / max(cpu_seconds, 1e-3)),
    }


def stages(url: str) -> dict[str, Any]:
    """Where the new writer's time goes, in this process: the streaming query (fetching
    rows), then the rendering and the orjson lines (one pass: `read_each` + `ndjson`)."""
    from sqlalchemy.engine import Result

    from codoc_fhir.bulk import export
    from codoc_fhir.config import Settings
    from codoc_fhir.resources.registry import build_registry
    from codoc_fhir.warehouse.db import make_engine

    engine = make_engine(url)
    registry = build_registry(Settings(CODOC_DATABASE_URL=url), "bench")
    spent = {"fetch": 0.0, "render_and_orjson": 0.0}
    count = 0
    for name in registry.types:
        for kind in export.exported_kinds(registry, name, False):
            query = kind.base_query().where(export.rows_clause(kind, None, None, None))
            with engine.connect() as conn:
                options = conn.execution_options(stream_results=True, yield_per=2000)
                result: Result[Any] = options.execute(query.order_by(kind.key))
                mark = time.perf_counter()
                for rows in result.mappings().partitions():
                    fetched = time.perf_counter()
                    export.ndjson(kind.read_each(conn, rows))
                    done = time.perf_counter()
                    spent["fetch"] += fetched - mark
                    spent["render_and_orjson"] += done - fetched
                    count += len(rows)
                    mark = time.perf_counter()
    per = {
        f"{stage}_us_per_resource": round(1e6 * value / count, 1) for stage, value in spent.items()
    }
    return {"scenario": "stages", "resources": count, **per}


def in_child(url: str, child: str, src: Path, resources: int = 0) -> dict[str, Any]:
    """A measurement (`measure`, `stages`, `floor`, `ceiling`) in a fresh process
    importing the code under `src`."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    command = [sys.executable, __file__, "--url", url, "--child", child]
    command += ["--resources", str(resources)]
    output = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    return dict(json.loads(output.stdout.strip().splitlines()[-1]))


def run_child(url: str, child: str, resources: int) -> dict[str, Any]:
    if child == "stages":
        return stages(url)
    reference, _, scenario = child.rpartition("-")
    if reference == "floor":
        return floor(url, scenario)
    if reference == "ceiling":
        return ceiling(scenario, resources)
    return measure(url, scenario)


def one_round(url: str, round_number: int, codes: dict[str, Path]) -> list[dict[str, Any]]:
    """Every code and the floor once per scenario, in an order reversed every other round;
    then the ceiling (no database, a fraction of a second), as many lines as exported."""
    labels = [*codes, "floor"]
    runs: list[dict[str, Any]] = []
    for scenario in SCENARIOS:
        counted = 0
        for label in [*(labels if round_number % 2 == 0 else reversed(labels)), "ceiling"]:
            load = os.getloadavg()
            child = scenario if label in codes else f"{label}-{scenario}"
            found = in_child(url, child, codes.get(label, NEW_SRC), counted)
            counted = counted or found["resources"]
            result = {"code": label, "round": round_number, **found}
            result["load_average_before"] = [round(value, 2) for value in load]
            print(json.dumps(result), flush=True)
            runs.append(result)
    return runs


def ratios(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per scenario, the medians of each code and reference, and the export's ratios."""
    summary: dict[str, Any] = {}
    for scenario in SCENARIOS:
        medians = {}
        for label in ("new", "old", *REFERENCES):
            mine = [run for run in runs if run["code"] == label and run["scenario"] == scenario]
            if mine:
                medians[label] = {
                    measure: statistics.median(run[measure] for run in mine)
                    for measure in ("resources_per_s", "resources_per_cpu_s")
                }
        ratio = {
            f"new_to_{label}_{measure}": round(medians["new"][measure] / medians[label][measure], 3)
            for label in medians
            if label != "new"
            for measure in medians["new"]
        }
        summary[scenario] = {"medians": medians, "ratios": ratio}
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True, help="SQLAlchemy URL of a filled warehouse")
    parser.add_argument("--compare", type=Path, help="the src directory of older code")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--out", type=Path, help="default: bench/results/export-<backend>.json")
    parser.add_argument("--child", choices=CHILD_RUNS, help=argparse.SUPPRESS)
    parser.add_argument("--resources", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_child(args.url, args.child, args.resources)))
        return
    codes = {"new": NEW_SRC, **({"old": args.compare} if args.compare else {})}
    runs = []
    for round_number in range(args.rounds):
        runs += one_round(args.url, round_number, codes)
    runs.append({"code": "new", **in_child(args.url, "stages", NEW_SRC)})
    print(json.dumps(runs[-1]), flush=True)
    backend = "postgresql" if args.url.startswith("postgresql") else "sqlite"
    out = args.out or HERE / "results" / f"export-{backend}.json"
    summary = {
        "database": args.url.rsplit("/", 1)[-1],
        "machine": f"{os.cpu_count()} cores, shared; niceness {os.nice(0)}",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "summary": ratios(runs),
        "runs": runs,
    }
    print(json.dumps(summary["summary"], indent=2))
    out.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
