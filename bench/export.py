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
after round, so the drift of a shared machine falls on both. Results, with the load
average, go to bench/results/export-<backend>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
NEW_SRC = HERE.parent / "src"
SCENARIOS = ("system", "patient")
CHILD_RUNS = (*SCENARIOS, "stages")


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


def stages(url: str) -> dict[str, Any]:
    """Where the new writer's time goes, in this process: the streaming query (fetching
    rows), the rendering (`read_many`: batch loads and `to_fhir`), the orjson lines."""
    from sqlalchemy.engine import Result

    from codoc_fhir.bulk import export
    from codoc_fhir.config import Settings
    from codoc_fhir.resources.registry import build_registry
    from codoc_fhir.warehouse.db import make_engine

    engine = make_engine(url)
    registry = build_registry(Settings(CODOC_DATABASE_URL=url), "bench")
    spent = {"fetch": 0.0, "render": 0.0, "orjson": 0.0}
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
                    resources = kind.read_many(conn, rows)
                    rendered = time.perf_counter()
                    export.ndjson(resources)
                    done = time.perf_counter()
                    spent["fetch"] += fetched - mark
                    spent["render"] += rendered - fetched
                    spent["orjson"] += done - rendered
                    count += len(resources)
                    mark = time.perf_counter()
    per = {
        f"{stage}_us_per_resource": round(1e6 * value / count, 1) for stage, value in spent.items()
    }
    return {"scenario": "stages", "resources": count, **per}


def in_child(url: str, scenario: str, src: Path) -> dict[str, Any]:
    """`measure` in a fresh process importing the code under `src`."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    command = [sys.executable, __file__, "--url", url, "--child", scenario]
    output = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    return dict(json.loads(output.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True, help="SQLAlchemy URL of a filled warehouse")
    parser.add_argument("--compare", type=Path, help="the src directory of older code")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--out", type=Path, help="default: bench/results/export-<backend>.json")
    parser.add_argument("--child", choices=CHILD_RUNS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        found = stages(args.url) if args.child == "stages" else measure(args.url, args.child)
        print(json.dumps(found))
        return
    codes = {"new": NEW_SRC, **({"old": args.compare} if args.compare else {})}
    runs = []
    for round_number in range(args.rounds):
        for label, src in codes.items() if round_number % 2 == 0 else reversed(codes.items()):
            for scenario in SCENARIOS:
                load = os.getloadavg()
                result = {"code": label, "round": round_number, **in_child(args.url, scenario, src)}
                result["load_average_before"] = [round(value, 2) for value in load]
                print(json.dumps(result), flush=True)
                runs.append(result)
    runs.append({"code": "new", **in_child(args.url, "stages", NEW_SRC)})
    print(json.dumps(runs[-1]), flush=True)
    backend = "postgresql" if args.url.startswith("postgresql") else "sqlite"
    out = args.out or HERE / "results" / f"export-{backend}.json"
    summary = {
        "database": args.url.rsplit("/", 1)[-1],
        "machine": f"{os.cpu_count()} cores, shared; run under nice -n 10",
        "runs": runs,
    }
    out.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
