"""Markdown tables from bench/results/*.json (pasted into docs/PERFORMANCE.md).

.venv/bin/python bench/report.py [bench/results/sqlite.json bench/results/postgresql.json]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
READ_TARGETS = {
    "floor": "floor (bench/floor.py: plain ASGI, one joined query, async psycopg pool)",
    "ceiling": "ceiling (fixed pre-serialised Procedure)",
    "api_generic": "read by id, fast read off (`CODOC_FAST_READ=false`)",
}
SCENARIOS = {
    "read": "read by id `GET /Procedure/{id}`",
    "search_subject": "search `?subject=Patient/N`",
    "search_subject_date": "search `?subject=Patient/N&date=ge2023-01-01&date=lt2024-01-01`",
    "create": "create `POST /Procedure`",
}


def scenario_row(label: str, found: dict[str, Any]) -> str:
    if not found.get("available"):
        why = f"not available ({found.get('status')}: {found.get('diagnostics')})"
        return f"| {label} | {why} | | | |"
    loaded, single = found["loaded"], found["single"]
    latency, under_load = single["latency_ms"], loaded["latency_ms"]
    errors = loaded["errors"]["non_2xx"] + single["errors"]["non_2xx"]
    return (
        f"| {label} | {loaded['throughput_rps']:,.0f} | "
        f"{latency['p50']} / {latency['p95']} / {latency['p99']} | "
        f"{under_load['p50']} / {under_load['p95']} / {under_load['p99']} | {errors} |"
    )


def backend_section(result: dict[str, Any]) -> list[str]:
    dataset = result["dataset"]
    connections = result["ceiling"]["loaded"]["connections"]
    lines = [
        f"### {result.get('database_version', result['backend'])} ({result['workers']} worker(s), "
        f"{dataset['patients']:,} patients, {dataset['facts']:,} facts)",
        "",
        f"| scenario | req/s at {connections} connections | latency ms at 1 connection "
        f"p50 / p95 / p99 | latency ms at {connections} p50 / p95 / p99 | non-2xx |",
        "|---|---|---|---|---|",
        *read_target_rows(result),
    ]
    lines += [scenario_row(SCENARIOS[name], result["scenarios"][name]) for name in SCENARIOS]
    lines += ["", *paging_lines(result["scenarios"]["search_code_date_paged"])]
    lines += ["", *flatness_lines(result["flatness"]), ""]
    lines += read_ratio_lines(result)
    lines += create_ratio_lines(result)
    ratio = result["ceiling_ratio"]
    if ratio.get("available", True):
        lines.append(
            f"Read by id = **{ratio['read_throughput']:.1%}** of the ceiling's throughput; "
            f"its single-connection p50 is {1 / ratio['read_p50_single']:.1f}x the ceiling's."
        )
    if "fill" in result:
        fill = result["fill"]
        steps = "; ".join(f"{name}: {seconds} s" for name, seconds in fill["steps_s"].items())
        lines.append(f"Fill: {fill['total_s']} s in all ({steps}).")
    started = result["machine"].get("load_average_at_start")
    lines.append(
        f"Load average (1, 5, 15 min) at the start: {started}, "
        f"at the end: {result.get('load_average_at_end')}."
    )
    return [*lines, ""]


def read_target_rows(result: dict[str, Any]) -> list[str]:
    """The floor, the ceiling and the API without its fast read (those the run measured)."""
    targets = (result.get("read_alternated") or {}).get("targets") or {"ceiling": result["ceiling"]}
    return [scenario_row(READ_TARGETS[name], targets[name]) for name in READ_TARGETS
            if name in targets]  # fmt: skip


def read_ratio_lines(result: dict[str, Any]) -> list[str]:
    """The API's read by id as a share of the floor of the same run, and the rounds."""
    alternated = result.get("read_alternated")
    if not alternated:
        return []
    rounds = "; ".join(
        f"{name} {', '.join(f'{value:,.0f}' for value in found['throughput_rounds'])}"
        for name, found in alternated["targets"].items()
    )
    lines = [
        f"Read by id alternated over {alternated['rounds']} rounds "
        f"({' / '.join(alternated['order'])}), req/s per round: {rounds}; "
        "each row above is the median round."
    ]
    floor = result.get("floor_ratio")
    if floor:
        same = "same JSON and ETag as the API" if result.get("floor_same_json") else (
            "**its JSON differs from the API's**")  # fmt: skip
        lines.append(
            f"Read by id = **{floor['read_throughput']:.1%} of the floor** (the floor answers "
            f"the {same}); its single-connection p50 is "
            f"{1 / floor['read_p50_single']:.1f}x the floor's."
        )
    return lines


def create_ratio_lines(result: dict[str, Any]) -> list[str]:
    """The create's floor and ceiling of the same run, alternated with the API's create."""
    alternated = result.get("create_alternated")
    if not alternated:
        return []
    targets = alternated["targets"]
    rounds = "; ".join(
        f"{name} {', '.join(f'{value:,.0f}' for value in found['throughput_rounds'])}"
        for name, found in targets.items()
    )
    shares = ", ".join(
        f"**{share:.1%} of the {name.removeprefix('api_to_')}**"
        for name, share in result["create_ratios"].items()
    )
    return [
        f"Create alternated over {alternated['rounds']} rounds "
        f"({' / '.join(alternated['order'])}), req/s per round: {rounds}. "
        f"The API's median create = {shares} (bench/floor.py and bench/ceiling.py, "
        "`POST /v4.3.0/Procedure`)."
    ]


def paging_lines(paged: dict[str, Any]) -> list[str]:
    if not paged.get("available"):
        return [f"Code+date search paged to the end: not available ({paged.get('diagnostics')})."]
    latency = paged["page_latency_ms"]
    return [
        f"Code+date search (`code=...|{paged['code']}`, year 2023, `_count=100`) paged to the "
        f"end by following `next` links: {paged['pages_per_round']} pages, "
        f"{paged['entries']:,} entries (database: {paged['expected_entries']:,}); page latency "
        f"p50 {latency['p50']} ms, p95 {latency['p95']} ms; whole walk "
        f"{min(paged['round_total_ms']):,.0f} ms (best of {paged['rounds']})."
    ]


def flatness_lines(flat: dict[str, Any]) -> list[str]:
    if not flat.get("available"):
        return ["Flatness: not available (search by subject+date not available)."]
    sizes = [key for key in flat if key.startswith("facts_")]
    small, big = sorted(sizes, key=lambda key: int(key.removeprefix("facts_")))
    return [
        f"Flatness (subject+date, 1 connection): p50 {flat[small]['p50']} ms at "
        f"{int(small.removeprefix('facts_')):,} facts vs {flat[big]['p50']} ms at "
        f"{int(big.removeprefix('facts_')):,} (x{flat['p50_ratio']}); p95 {flat[small]['p95']} "
        f"vs {flat[big]['p95']} ms (x{flat['p95_ratio']})."
    ]


def machine_lines(result: dict[str, Any]) -> list[str]:
    found = result["machine"]
    return [
        f"- {found['nproc']} CPUs (`nproc`), {found['cpu_model']}, "
        f"{found['memory_gib']} GiB of memory, Linux {found['kernel']}",
        f"- Python {found['python']}, SQLite {found['sqlite']}, {found['wrk']}, "
        f"PostgreSQL on the same machine (loopback)",
        "- load generator, server and database share the same cores",
        "",
    ]


def main() -> None:
    paths = [Path(arg) for arg in sys.argv[1:]] or [
        path for name in ("sqlite", "postgresql") if (path := RESULTS / f"{name}.json").exists()
    ]
    results = [json.loads(path.read_text()) for path in paths]
    if results:
        print("\n".join(machine_lines(results[0])))
    for result in results:
        print("\n".join(backend_section(result)))


if __name__ == "__main__":
    main()
