"""Fill a warehouse at scale for the benchmark, with bulk SQL.

    .venv/bin/python bench/fill.py --url postgresql+psycopg://postgres@127.0.0.1:5432/codoc_bench \
        --patients 100000 --facts 1000000

The database is migrated first (codoc_fhir.warehouse.db.migrate) and emptied, then filled
with the deterministic rows of bench/dataset.py (same seed, same rows, on either backend).
Fast paths: PostgreSQL COPY through psycopg with foreign-key triggers off for the session;
SQLite executemany in large transactions with journaling relaxed. The secondary indexes of the
big tables are dropped before loading and rebuilt after (as the migration defined them), then
the planner statistics are refreshed. Prints the time of each step.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from typing import Any

import dataset
from sqlalchemy import Engine, create_engine, inspect, text

from codoc_fhir.warehouse.db import migrate
from codoc_fhir.warehouse.schema import metadata

BIG_TABLES = ("dwh_patient", "dwh_patient_ipphist", "dwh_patient_stay", "dwh_data")
BATCH = 20_000


class Timer:
    """Prints how long each step took, and the total."""

    def __init__(self) -> None:
        self.started = self.last = time.perf_counter()
        self.steps: dict[str, float] = {}

    def step(self, name: str, rows: int | None = None) -> None:
        now = time.perf_counter()
        elapsed, self.last = now - self.last, now
        self.steps[name] = round(elapsed, 2)
        rate = f" ({rows / elapsed:,.0f} rows/s)" if rows and elapsed > 0 else ""
        count = f" {rows:,} rows" if rows is not None else ""
        print(f"{name:<28}{count:>16} in {elapsed:7.2f} s{rate}", flush=True)

    def total(self) -> float:
        return round(time.perf_counter() - self.started, 2)


def empty_database(engine: Engine) -> None:
    """Remove every row of the warehouse tables (identities restart on PostgreSQL)."""
    names = [table.name for table in reversed(metadata.sorted_tables)]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(names)} RESTART IDENTITY CASCADE"))
        else:
            for name in names:
                conn.execute(text(f"DELETE FROM {name}"))


def secondary_indexes(engine: Engine) -> list[tuple[str, str, list[str]]]:
    """(name, table, columns) of the non-unique indexes of the big tables."""
    inspector = inspect(engine)
    return [
        (index["name"], table, [str(column) for column in index["column_names"]])
        for table in BIG_TABLES
        for index in inspector.get_indexes(table)
        if not index.get("unique") and index["name"]
    ]


def drop_indexes(engine: Engine, indexes: Sequence[tuple[str, str, list[str]]]) -> None:
    with engine.begin() as conn:
        for name, _table, _columns in indexes:
            conn.execute(text(f"DROP INDEX IF EXISTS {name}"))


def create_indexes(engine: Engine, indexes: Sequence[tuple[str, str, list[str]]]) -> None:
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SET maintenance_work_mem = '256MB'"))
        for name, table, columns in indexes:
            conn.execute(text(f"CREATE INDEX {name} ON {table} ({', '.join(columns)})"))


class Loader:
    """Bulk inserts of tuples into one table, by the fastest path of the backend."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"

    def load(self, table: str, columns: Sequence[str], rows: Iterable[tuple[Any, ...]]) -> int:
        if self.postgres:
            return self._copy(table, columns, rows)
        return self._executemany(table, columns, rows)

    def _copy(self, table: str, columns: Sequence[str], rows: Iterable[tuple[Any, ...]]) -> int:
        count = 0
        raw = self.engine.raw_connection()
        try:
            cursor = raw.cursor()
            cursor.execute("SET session_replication_role = replica")  # no FK triggers
            statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
            with cursor.copy(statement) as copy:
                for row in rows:
                    copy.write_row(row)
                    count += 1
            raw.commit()
        finally:
            raw.close()
        return count

    def _executemany(
        self, table: str, columns: Sequence[str], rows: Iterable[tuple[Any, ...]]
    ) -> int:
        converters = self._sqlite_converters(table, columns)
        statement = (
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        )
        count = 0
        raw = self.engine.raw_connection()
        try:
            cursor = raw.cursor()
            for batch in _batches(rows, BATCH * 5):
                cursor.executemany(statement, [_convert(row, converters) for row in batch])
                count += len(batch)
            raw.commit()
        finally:
            raw.close()
        return count

    def _sqlite_converters(self, table: str, columns: Sequence[str]) -> list[Any]:
        """SQLAlchemy's own bind processors (dates as its strings, booleans as 0/1)."""
        dialect = self.engine.dialect
        found = []
        for name in columns:
            column_type = metadata.tables[table].c[name].type
            found.append(column_type.dialect_impl(dialect).bind_processor(dialect))
        return found


def _convert(row: tuple[Any, ...], converters: list[Any]) -> tuple[Any, ...]:
    return tuple(
        convert(value) if convert is not None and value is not None else value
        for value, convert in zip(row, converters, strict=True)
    )


def _batches(rows: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(rows)
    while batch := list(islice(iterator, size)):
        yield batch


def bulk_engine(url: str) -> Engine:
    """An engine tuned for loading: SQLite without fsyncs nor FK checks."""
    if not url.startswith("sqlite"):
        return create_engine(url)
    engine = create_engine(url)

    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        for pragma in (
            "journal_mode=WAL",
            "synchronous=OFF",
            "foreign_keys=OFF",
            "cache_size=-200000",
            "temp_store=MEMORY",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    return engine


def reset_sequences(engine: Engine) -> None:
    """PostgreSQL: the next id of every table follows the rows loaded with explicit keys."""
    if engine.dialect.name != "postgresql":
        return
    with engine.begin() as conn:
        for table in metadata.sorted_tables:
            key = [column for column in table.primary_key.columns if column.autoincrement]
            if len(table.primary_key.columns) != 1 or not key:
                continue
            name = key[0].name
            sequence = conn.execute(
                text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": table.name, "c": name}
            ).scalar()
            if sequence:
                conn.execute(
                    text(
                        f"SELECT setval('{sequence}', "
                        f"COALESCE((SELECT max({name}) FROM {table.name}), 0) + 1, false)"
                    )
                )


def analyze(engine: Engine) -> None:
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM (ANALYZE)"))
    else:
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))


def fill(url: str, patients: int, facts: int, seed: int) -> dict[str, Any]:
    """Migrate, empty and fill the database at `url`; the step timings."""
    timer = Timer()
    migrate(url)
    engine = bulk_engine(url)
    empty_database(engine)
    indexes = secondary_indexes(engine)
    drop_indexes(engine, indexes)
    timer.step("migrate, empty, drop indexes")
    load = Loader(engine).load
    sizes = dataset.Sizes(patients=patients, facts=facts)
    warehouse = dataset.Warehouse(sizes=sizes, seed=seed)
    warehouse.concepts = dataset.make_concepts(random.Random(f"{seed}-concepts"))
    count = 0
    for table, rows in dataset.organisation_rows(sizes).items():
        count += load(table, dataset.ORG_COLUMNS[table], rows)
    count += load(
        "dwh_thesaurus", dataset.THESAURUS_COLUMNS, dataset.thesaurus_rows(warehouse.concepts)
    )
    count += load(
        "dwh_thesaurus_data", dataset.CONCEPT_COLUMNS, dataset.concept_rows(warehouse.concepts)
    )
    timer.step("organisations, concepts", count)
    rng = random.Random(f"{seed}-patients")
    timer.step(
        "dwh_patient",
        load("dwh_patient", dataset.PATIENT_COLUMNS, dataset.patient_rows(rng, sizes)),
    )
    rng = random.Random(f"{seed}-ipp")
    timer.step(
        "dwh_patient_ipphist",
        load("dwh_patient_ipphist", dataset.IPP_COLUMNS, dataset.ipp_rows(rng, sizes)),
    )
    rng = random.Random(f"{seed}-stays")
    timer.step(
        "dwh_patient_stay",
        load("dwh_patient_stay", dataset.STAY_COLUMNS, dataset.stay_rows(rng, warehouse)),
    )
    rng = random.Random(f"{seed}-facts")
    timer.step(
        "dwh_data", load("dwh_data", dataset.FACT_COLUMNS, dataset.fact_rows(rng, warehouse))
    )
    create_indexes(engine, indexes)
    timer.step(f"rebuild {len(indexes)} indexes")
    reset_sequences(engine)
    analyze(engine)
    timer.step("sequences, analyze")
    engine.dispose()
    print(f"{'total':<28}{'':>16} in {timer.total():7.2f} s")
    return {"steps_s": timer.steps, "total_s": timer.total(), "patients": patients, "facts": facts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True, help="SQLAlchemy URL of the database to fill")
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--facts", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    fill(args.url, args.patients, args.facts, args.seed)


if __name__ == "__main__":
    main()
