"""`codoc-fhir import`: bulk load of FHIR resources from NDJSON and Bundle files.

Every resource goes through the same mapping as `POST /Type` (the registry's
`kind_for_create(body).create(conn, body)`), so every contract check applies. Resources
are committed in batches; each batch's transaction also records how far the file got
(fhir_import_checkpoint) and which source ids became which of ours (fhir_import_id_map),
so an interrupted run resumes where it stopped and a re-run creates nothing twice.
Each resource runs in a savepoint: a failing one leaves no trace. See docs/IMPORT.md.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, TextIO

import orjson
from sqlalchemy import Connection, select
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError

from codoc_fhir.bulk_import_files import FileUnreadable, Record, SourceFile, import_key
from codoc_fhir.bulk_import_ids import IdMap, source_key
from codoc_fhir.bulk_import_progress import Progress
from codoc_fhir.config import Settings
from codoc_fhir.fhir.dates import utc_now
from codoc_fhir.fhir.errors import FhirError, Invalid
from codoc_fhir.resources.generic.resource import StoredResource
from codoc_fhir.resources.registry import build_registry
from codoc_fhir.warehouse.db import make_engine, migrate, write_transaction
from codoc_fhir.warehouse.schema import fhir_import_checkpoint as checkpoints

# Set by the source server, meaningless here (ours are assigned on create).
DROPPED_FIELDS = ("id", "meta")
SHOWN_FAILURES = 20


@dataclass
class ImportOptions:
    """The command's options."""

    batch_size: int = 500
    continue_on_error: bool = False
    errors_path: Path | None = None
    quiet: bool = False
    report_every: float = 10.0  # seconds between progress lines when stderr is no terminal


@dataclass
class Counters:
    """What happened to the resources read."""

    created: int = 0
    skipped: int = 0  # already imported (source id in the map)
    failed: int = 0
    unsupported: Counter[str] = field(default_factory=Counter)

    def add(self, other: Counters) -> None:
        self.created += other.created
        self.skipped += other.skipped
        self.failed += other.failed
        self.unsupported.update(other.unsupported)

    def text(self) -> str:
        return f"{self.created} created, {self.skipped} skipped (already imported), " + (
            f"{self.failed} failed"
        )


@dataclass
class Failure:
    """A resource (or file) that could not be imported, and why."""

    path: Path
    line: int  # the line (NDJSON) or load-order rank (Bundle) the checkpoint counts
    resource_type: str
    source_id: str | None
    error: FhirError
    entry: int | None = None  # in a Bundle: the index in Bundle.entry

    @property
    def location(self) -> str:
        if self.entry is not None:
            return f"{self.path} Bundle.entry[{self.entry}]"
        return f"{self.path}:{self.line}"

    def text(self) -> str:
        what = f"{self.resource_type}/{self.source_id}" if self.source_id else self.resource_type
        return f"{self.location}: {what}: {self.error.status} {self.error.code}: " + (
            self.error.diagnostics
        )

    def as_json(self) -> bytes:
        return orjson.dumps(
            {
                "file": str(self.path),
                "line": self.line,
                "entry": self.entry,
                "resourceType": self.resource_type,
                "id": self.source_id,
                "status": self.error.status,
                "outcome": self.error.outcome(),
            }
        )


class ImportStopped(Exception):
    """The first failure, when the import is not asked to go on after errors."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.text())
        self.failure = failure


@dataclass
class Batch:
    """A batch's outcome: how far the file got, counts, failures, the one that stops."""

    lines_done: int
    counters: Counters = field(default_factory=Counters)
    failures: list[Failure] = field(default_factory=list)
    stop: Failure | None = None


class Importer:
    """Imports files one after the other into the warehouse of `settings`."""

    def __init__(self, settings: Settings, options: ImportOptions, out: TextIO | None = None):
        self.options = options
        self.out = out or sys.stdout
        self.registry = build_registry(settings)
        self.served = list(self.registry.types)
        self.stored = frozenset(
            kind.fhir_type for kind in self.registry.kinds() if isinstance(kind, StoredResource)
        )
        self.engine = make_engine(settings.database_url)
        self.totals = Counters()
        self.shown = 0

    # --- files -------------------------------------------------------------------------

    def import_file(self, path: Path) -> Counters:
        """Import one file from its checkpoint on; its counters (this run and before)."""
        key = import_key(path)
        state = self._checkpoint(key, path)
        counters = Counters(
            state["resources_created"], state["resources_skipped"], state["resources_failed"]
        )
        if state["status"] == "done":
            self._say(f"{path}: done by an earlier run ({counters.text()}), skipped")
            return counters
        try:
            source = SourceFile(path)
        except FileUnreadable as error:
            self._fail(Failure(path, 0, "file", None, Invalid(str(error))), counters)
            return counters
        progress = Progress(path.name, source.total, source.unit, self.options, self.out)
        try:
            self._load(key, path, source, state["lines_done"], counters, progress)
        finally:
            progress.close()
        with write_transaction(self.engine) as conn:
            self._save(conn, key, state["lines_done"], counters, "done", final=True)
        self._say(f"{path}: {counters.text()}")
        return counters

    def _load(
        self,
        key: str,
        path: Path,
        source: SourceFile,
        lines_done: int,
        counters: Counters,
        progress: Progress,
    ) -> None:
        records = source.records(lines_done)
        while batch := list(islice(records, self.options.batch_size)):
            outcome = self._run_batch(key, path, batch, lines_done, counters)
            lines_done = outcome.lines_done
            counters.add(outcome.counters)
            self.totals.add(outcome.counters)
            self._report(outcome.failures)
            done = batch if outcome.stop is None else _before(batch, outcome.stop.line)
            progress.advance(sum(record.size for record in done), counters)
            if outcome.stop is not None:
                self.totals.failed += 1
                raise ImportStopped(outcome.stop)

    def _checkpoint(self, key: str, path: Path) -> dict[str, Any]:
        """The file's checkpoint row, created (status running, nothing done) if new."""
        with write_transaction(self.engine) as conn:
            row = (
                conn.execute(select(checkpoints).where(checkpoints.c.import_key == key))
                .mappings()
                .first()
            )
            if row is None:
                values = {
                    "import_key": key,
                    "file_path": str(path.resolve())[:2000],
                    "lines_done": 0,
                    "resources_created": 0,
                    "resources_skipped": 0,
                    "resources_failed": 0,
                    "status": "running",
                    "update_date": utc_now(),
                }
                conn.execute(checkpoints.insert().values(**values))
                return values
            return dict(row)

    def _save(
        self,
        conn: Connection,
        key: str,
        lines_done: int,
        counters: Counters,
        status: str = "running",
        final: bool = False,
    ) -> None:
        values: dict[str, Any] = {"status": status, "update_date": utc_now()}
        if not final:
            values.update(
                lines_done=lines_done,
                resources_created=counters.created,
                resources_skipped=counters.skipped,
                resources_failed=counters.failed,
            )
        conn.execute(checkpoints.update().where(checkpoints.c.import_key == key).values(**values))

    # --- batches -----------------------------------------------------------------------

    def _run_batch(
        self, key: str, path: Path, batch: list[Record], lines_done: int, before: Counters
    ) -> Batch:
        """One transaction: the batch's resources, their id map rows and the checkpoint.

        Without --continue-on-error the resources before the first failure are committed
        and the checkpoint stops just before it."""
        outcome = Batch(lines_done)
        with write_transaction(self.engine) as conn:
            # A write first: SQLite then holds a real transaction the savepoints nest in.
            self._save(conn, key, lines_done, before)
            ids = IdMap(self.served, self.stored)
            ids.prefetch(conn, [(record.resource, record.full_url) for record in batch])
            for record in batch:
                if record.position == 0:
                    continue
                failure = self._import_record(conn, ids, path, record, outcome.counters)
                if failure is not None and not self.options.continue_on_error:
                    outcome.stop = failure
                    break
                if failure is not None:
                    outcome.failures.append(failure)
                    outcome.counters.failed += 1
                outcome.lines_done = record.position
            ids.flush(conn)
            total = Counters()
            total.add(before)
            total.add(outcome.counters)
            self._save(conn, key, outcome.lines_done, total)
        return outcome

    def _import_record(
        self, conn: Connection, ids: IdMap, path: Path, record: Record, counters: Counters
    ) -> Failure | None:
        """Create one resource (in a savepoint), or count it as skipped or unsupported."""
        resource = record.resource
        if record.error is not None:
            return Failure(path, record.position, "line", None, Invalid(record.error))
        if resource is None:  # a blank line, or a Bundle entry without resource (DELETE)
            if record.entry is not None:
                counters.unsupported["(entry without resource)"] += 1
            return None
        kind_name = record.resource_type
        if not isinstance(resource, dict) or kind_name.startswith("("):
            error = Invalid("Not a FHIR resource: a JSON object with a resourceType is expected")
            return Failure(path, record.position, kind_name, None, error)
        fhir_type = self.registry.types.get(kind_name)
        if fhir_type is None:
            counters.unsupported[kind_name] += 1
            return None
        _, ident = source_key(resource, record.full_url)
        known = ids.target(kind_name, ident)
        if known is not None:
            if record.full_url:  # imported from another file: its fullUrl names it too
                ids.add(kind_name, [record.full_url[:300]], known.split("/", 1)[1])
            counters.skipped += 1
            return None
        try:
            with conn.begin_nested():
                kept = {k: v for k, v in resource.items() if k not in DROPPED_FIELDS}
                body = ids.rewrite(kept, record.names)
                created = fhir_type.kind_for_create(body).create(conn, body, read_back=False)
        except (FhirError, IntegrityError, DataError) as error:
            problem = _fhir(error)
        except DBAPIError:
            raise  # the database itself failed: stop, the batch is rolled back
        except Exception as error:  # a mapping bug must not abort a million-row load
            problem = Invalid(f"Unexpected {type(error).__name__}: {error}", status=500)
        else:
            names = [ident] if not record.full_url else [ident, record.full_url[:300]]
            ids.add(kind_name, names, str(created["id"]))
            counters.created += 1
            return None
        source_id = resource.get("id")
        return Failure(path, record.position, kind_name, source_id, problem, record.entry)

    # --- reporting ---------------------------------------------------------------------

    def _fail(self, failure: Failure, counters: Counters) -> None:
        counters.failed += 1
        self.totals.failed += 1
        if not self.options.continue_on_error:
            raise ImportStopped(failure)
        self._report([failure])

    def _report(self, failures: list[Failure]) -> None:
        """Failures go to the --errors file (after their batch is committed) and, the
        first few, to stderr."""
        if not failures:
            return
        if self.options.errors_path is not None:
            with self.options.errors_path.open("ab") as handle:
                handle.writelines(failure.as_json() + b"\n" for failure in failures)
        for failure in failures:
            if self.shown < SHOWN_FAILURES:
                print(f"failed: {failure.text()}", file=sys.stderr)
            elif self.shown == SHOWN_FAILURES:
                print("failed: ... (more failures: see --errors FILE)", file=sys.stderr)
            self.shown += 1

    def _say(self, text: str) -> None:
        print(text, file=self.out, flush=True)


def _before(batch: list[Record], line: int) -> list[Record]:
    return [record for record in batch if record.position < line]


def _fhir(error: Exception) -> FhirError:
    if isinstance(error, IntegrityError):
        return FhirError(
            "The resource conflicts with existing data (a duplicate or a dangling link)",
            status=409,
            code="conflict",
        )
    if isinstance(error, DataError):
        return Invalid("A value does not fit its warehouse column (too long or out of range)")
    assert isinstance(error, FhirError)
    return error


def summary(totals: Counters, elapsed: float) -> str:
    """The closing lines: counts, unsupported types, time and speed."""
    handled = totals.created + totals.skipped + totals.failed
    rate = handled / elapsed if elapsed > 0 else 0.0
    lines = [f"total: {totals.text()} in {elapsed:.1f} s ({rate:.0f} resources/s)"]
    if totals.unsupported:
        kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(totals.unsupported.items()))
        lines.append(f"not imported (type not served here): {kinds}")
    return "\n".join(lines)


def run_import(
    settings: Settings, paths: list[Path], options: ImportOptions, out: TextIO | None = None
) -> int:
    """Migrate, then import `paths` in order; the exit status (0: no failure)."""
    out = out or sys.stdout
    missing = [str(path) for path in paths if not path.is_file()]
    if missing:
        print(f"error: no such file: {', '.join(missing)}", file=sys.stderr)
        return 2
    migrate(settings.database_url)
    importer = Importer(settings, options, out)
    started = time.monotonic()
    status = 0
    try:
        for path in paths:
            importer.import_file(path)
    except ImportStopped as stop:
        print(f"error: {stop.failure.text()}", file=sys.stderr)
        print(
            "stopped at the first failure (--continue-on-error goes on); what was before it "
            "is committed: fix the resource and run the same command again",
            file=sys.stderr,
        )
        status = 1
    except KeyboardInterrupt:
        print("interrupted: every committed batch is kept; run again to resume", file=sys.stderr)
        status = 130
    finally:
        importer.engine.dispose()
    print(summary(importer.totals, time.monotonic() - started), file=out)
    return status or (1 if importer.totals.failed else 0)
