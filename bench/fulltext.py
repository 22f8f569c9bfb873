"""Full-text search latency: `DocumentReference?_content=` over 100,000 documents on
PostgreSQL, through `codoc-fhir serve`, one request at a time.

    .venv/bin/python bench/fulltext.py [--documents 100000] [--runs 40]

Documents of ~1 KB mix sentences of the annotated corpus, sentences naming no concept and
words of a 20,000-word made-up vocabulary (so the index has realistic rare terms). Each
query (rare word, common word, phrase, OR, exclusion, with a subject) is sent `--runs`
times; writes bench/results/fulltext-postgresql.json with p50 / p95 per query.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

import fill
import httpx
import servers
from extraction import NEUTRAL, SYLLABLES
from sqlalchemy import text

from codoc_fhir.warehouse.db import make_engine, migrate

HERE = Path(__file__).parent
CORPUS = HERE.parent / "tests" / "research"
PG_ADMIN = os.environ.get(
    "CODOC_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
DATABASE = "codoc_bench_fulltext"
PATIENTS = 5000


def vocabulary(rng: random.Random, size: int) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))))
    return sorted(words)


def texts(count: int, rng: random.Random, words: list[str]):
    lines = (CORPUS / "corpus_fr.jsonl").read_text(encoding="utf-8").splitlines()
    sentences = [json.loads(line)["text"] for line in lines]
    for _ in range(count):
        parts = [rng.choice(sentences), rng.choice(NEUTRAL["french"]), rng.choice(sentences)]
        parts += [" ".join(rng.choices(words, k=25)) + "."]
        while sum(len(part) for part in parts) < 1000:
            parts.append(rng.choice(NEUTRAL["french"]))
        yield " ".join(parts)


def load(url: str, count: int, rng: random.Random, words: list[str]) -> float:
    migrate(url)
    engine = make_engine(url)
    loader = fill.Loader(engine)
    now = datetime.now(UTC)
    started = time.perf_counter()
    with engine.begin() as conn:
        for language in ("french", "english"):
            conn.execute(text(f"DROP INDEX dwh_text_fts_{language}_index"))
    loader.load("dwh_patient", ["patient_num", "lastname", "update_date"],
                ((n, f"P{n}", now) for n in range(1, PATIENTS + 1)))  # fmt: skip
    patient_of = [rng.randint(1, PATIENTS) for _ in range(count)]
    columns = ["document_num", "patient_num", "document_date", "status", "displayed_text"]
    documents = ((n, patient_of[n - 1], now, "current", "") for n in range(1, count + 1))
    loader.load("dwh_document", columns, documents)
    loader.load("dwh_text", ["document_num", "patient_num", "text", "update_date"],
                ((n, patient_of[n - 1], body, now)
                 for n, body in enumerate(texts(count, rng, words), 1)))  # fmt: skip
    with engine.begin() as conn:
        for language in ("french", "english"):
            conn.execute(text(
                f"CREATE INDEX dwh_text_fts_{language}_index ON dwh_text "
                f"USING gin (dwh_text_fts_{language})"
            ))  # fmt: skip
        conn.execute(text("ANALYZE"))
    engine.dispose()
    return time.perf_counter() - started


def measure(base: str, queries: dict[str, str], runs: int) -> dict[str, dict]:
    results = {}
    with httpx.Client(base_url=base, timeout=30) as client:
        for name, query in queries.items():
            timings, total = [], None
            for _ in range(runs + 3):
                started = time.perf_counter()
                answer = client.get(f"/v4.3.0/DocumentReference?{query}")
                timings.append((time.perf_counter() - started) * 1000)
                assert answer.status_code == 200, answer.text
                total = answer.json().get("total")
            timings = sorted(timings[3:])  # the first runs warm the caches
            results[name] = {
                "query": query,
                "total": total,
                "p50_ms": round(statistics.median(timings), 1),
                "p95_ms": round(timings[int(0.95 * (len(timings) - 1))], 1),
            }
            print(name, results[name], flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--documents", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--reuse", action="store_true", help="keep the loaded database")
    args = parser.parse_args()
    rng = random.Random(7)
    words = vocabulary(rng, 20_000)
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{DATABASE}"
    if not args.reuse:
        url = servers.fresh_database(PG_ADMIN, DATABASE)
        seconds = load(url, args.documents, rng, words)
        print(f"loaded {args.documents} documents in {seconds:.0f} s", flush=True)
    queries = {
        "baseline: by subject (no text)": "subject=Patient/42",
        "rare word": f"_content={words[123]}",
        "common word": "_content=toux",
        "two words": "_content=fièvre toux",
        "phrase": '_content="embolie pulmonaire"',
        "or": "_content=asthme OR épilepsie",
        "exclusion": "_content=fièvre -toux",
        "with subject": "_content=toux&subject=Patient/42",
    }
    for name, query in list(queries.items())[1:]:  # the page alone, without the count
        queries[f"{name}, _total=none"] = f"{query}&_total=none"
    with servers.api_server(url, 1, HERE / "results" / "fulltext-server.log") as base:
        results = measure(base, queries, args.runs)
    report = {"documents": args.documents, "mean_text_bytes": 1000, "queries": results,
              "load_average": os.getloadavg(), "cores": os.cpu_count()}  # fmt: skip
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "fulltext-postgresql.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
