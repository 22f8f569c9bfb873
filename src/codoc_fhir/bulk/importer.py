"""`codoc-fhir import`: bulk load of FHIR resources from NDJSON and Bundle files.

Every resource goes through the interaction layer's create and update, as `POST /Type`
does (interactions/ingest.py, as the system caller), so every contract check applies. Resources
are committed in batches; each batch's transaction also records how far the file got
(fhir_import_checkpoint) and which source ids became which of ours (fhir_import_id_map),
so an interrupted run resumes where it stopped and a re-run creates nothing twice.
Consecutive creates of one kind are written together (BatchRun, Resource.create_many) in a
savepoint; a group that fails is done again one resource at a time, each in its own
savepoint: a failing one leaves no trace, and is reported as a one-by-one import reports it.

Files and lines come in any order: a resource naming one that nothing created yet waits
(in memory) and is retried once every file is read, pass after pass while a pass creates
something; what still waits then is a failure. A failed resource is never counted as done
in its file's checkpoint, so a plain re-run tries it again. See docs/IMPORT.md.
"""

from __future__ import annotations

import gc
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import Connection, select
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, InterfaceError, SQLAlchemyError

from codoc_fhir.bulk.ahead import NOT_CHECKED, CheckAhead, Verdicts
from codoc_fhir.bulk.failures import Causes, Failure
from codoc_fhir.bulk.files import (
    FileUnreadable,
    Record,
    SourceFile,
    as_written,
    import_key,
    is_ndjson,
    load_order_of_files,
)
from codoc_fhir.bulk.ids import IdMap, content_hash, hashed, source_key
from codoc_fhir.bulk.lock import ImportRunning, import_lock
from codoc_fhir.bulk.progress import Progress
from codoc_fhir.bulk.statistics import Statistics
from codoc_fhir.config import Settings
from codoc_fhir.fhir.dates import utc_now
from codoc_fhir.fhir.errors import FhirError, Invalid
from codoc_fhir.fhir.json_types import CheckedAhead
from codoc_fhir.fhir.references import ReferenceOutsideRun, outside_run
from codoc_fhir.interactions import ingest
from codoc_fhir.interactions.caller import Caller
from codoc_fhir.interactions.database import Joined
from codoc_fhir.resources.base import Resource
from codoc_fhir.resources.registry import FhirType, build_registry
from codoc_fhir.search.matches import resolve_conditional_references
from codoc_fhir.warehouse.db import make_engine, migrate, write_transaction
from codoc_fhir.warehouse.schema import fhir_import_checkpoint as checkpoints

SHOWN_FAILURES = 20
SYSTEM = Caller.system()  # an import is the system writing, under no token


@dataclass
class ImportOptions:
    """The command's options."""

    batch_size: int = 500
    continue_on_error: bool = False
    errors_path: Path | None = None
    quiet: bool = False
    wait: bool = False  # for another import on the database to end, instead of exiting 2
    report_every: float = 10.0  # seconds between progress lines when stderr is no terminal
    check_ahead: str = "auto"  # the model check in a second process: auto, on, off (ahead.py)


@dataclass
class Counters:
    """What happened to the resources read."""

    created: int = 0
    updated: int = 0  # imported before, changed since (an edited file)
    skipped: int = 0  # already imported, unchanged
    failed: int = 0
    unsupported: Counter[str] = field(default_factory=Counter)

    def add(self, other: Counters) -> None:
        self.created += other.created
        self.updated += other.updated
        self.skipped += other.skipped
        self.failed += other.failed
        self.unsupported.update(other.unsupported)

    def count(self, outcome: str) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)

    def text(self) -> str:
        updated = f"{self.updated} updated, " if self.updated else ""
        return f"{self.created} created, {updated}{self.skipped} skipped (already imported), " + (
            f"{self.failed} failed"
        )


class ImportStopped(Exception):
    """The first failure, when the import is not asked to go on after errors."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.text())
        self.failure = failure


@dataclass
class FileRun:
    """One file in this run: its checkpoint key, what this run did with it, and the
    positions not done (waiting for a reference, or failed) that keep its checkpoint back."""

    key: str
    path: Path
    resumed_from: int = 0
    read_to: int = 0
    complete: bool = False  # every record read
    pending: set[int] = field(default_factory=set)
    counters: Counters = field(default_factory=Counters)

    @property
    def lines_done(self) -> int:
        """The checkpoint: every position up to this one is done."""
        done = max(self.read_to, self.resumed_from)
        return min(self.pending) - 1 if self.pending else done

    @property
    def status(self) -> str:
        if not self.complete:
            return "running"
        return "partial" if self.pending else "done"


@dataclass
class Waiting:
    """A resource whose references name resources that nothing has created yet."""

    file: FileRun
    record: Record
    error: FhirError | None = None  # why its last try failed, once tried with them as sent


class Importer:
    """Imports files into the warehouse of `settings`, then retries what waits."""

    def __init__(self, settings: Settings, options: ImportOptions, out: TextIO | None = None):
        self.options = options
        self.out = out or sys.stdout
        self.registry = build_registry(settings)
        self.served = list(self.registry.types)
        self.engine = make_engine(settings.database_url)
        self.totals = Counters()
        self.causes = Causes()
        self.files: list[FileRun] = []
        self.waiting: list[Waiting] = []
        self.shown = 0
        self._batches = 0
        self.ahead = CheckAhead(options.check_ahead)
        self.statistics = Statistics(self.engine)
        self.checked_ahead = 0  # creates whose model check ran ahead (ahead.py)

    def run(self, paths: list[Path]) -> None:
        """Every file (Organizations first, see files.load_rank), then the retries."""
        try:
            for path in load_order_of_files(paths):
                self.import_file(path)
            self.retry_waiting()
            self.finish()
        finally:
            self.ahead.close()
            self.statistics.close()
            gc.unfreeze()  # _freeze_long_lived: the process goes on as before the run

    def finish(self) -> None:
        """Final checkpoints, and one line per file read in this run."""
        with write_transaction(self.engine) as conn:
            for file in self.files:
                self._save(conn, file)
        for file in self.files:
            resumed = f", resumed after {file.resumed_from}" if file.resumed_from else ""
            self._say(f"{file.path}: {file.counters.text()}{resumed}")

    # --- files -------------------------------------------------------------------------

    def import_file(self, path: Path) -> Counters:
        """Import one file from its checkpoint on; what this run did with it (or, for a
        file an earlier run finished, what that run did)."""
        key = import_key(path)
        twin = next((file for file in self.files if file.key == key), None)
        if twin is not None:  # the same content twice (a copy): one checkpoint, read once
            self._say(f"{path}: the same content as {twin.path}, skipped")
            return twin.counters
        state = self._checkpoint(key, path)
        if state["status"] == "done":
            earlier = Counters(state["resources_created"], 0, state["resources_skipped"], 0)
            self._say(f"{path}: done by an earlier run ({earlier.text()}), skipped")
            return earlier
        file = FileRun(key, path, resumed_from=state["lines_done"])
        self.files.append(file)
        try:
            source = SourceFile(path)
        except FileUnreadable as error:
            file.pending.add(1)
            self._fail(Failure(path, 0, "file", None, Invalid(str(error))), file)
            return file.counters
        progress = Progress(path.name, source.total, source.unit, self.options, self.out)
        try:
            self._load(file, source, progress)
        finally:
            progress.close()
        file.complete = True
        with write_transaction(self.engine) as conn:
            self._save(conn, file)
        return file.counters

    def _load(self, file: FileRun, source: SourceFile, progress: Progress) -> None:
        pairs = source.records_and_lines(file.resumed_from)
        ahead = is_ndjson(source.path) and self.ahead.wanted(source.total)
        first = True
        for batch, verdicts in self.ahead.batches(pairs, self.options.batch_size, ahead):
            stop = self._run_batch(file, batch, verdicts)
            if first:  # the file's types are loaded now (their R4B models, statements)
                _freeze_long_lived()
                first = False
            done = batch if stop is None else [r for r in batch if r.position < stop.line]
            progress.advance(sum(record.size for record in done), file.counters)
            if stop is not None:
                raise ImportStopped(stop)

    def _checkpoint(self, key: str, path: Path) -> dict[str, Any]:
        """The file's checkpoint row (its path brought up to date: it may have moved),
        created (status running, nothing done) if new."""
        where = checkpoints.c.import_key == key
        with write_transaction(self.engine) as conn:
            row = conn.execute(select(checkpoints).where(where)).mappings().first()
            place = str(path.resolve())[:2000]
            if row is not None:
                conn.execute(checkpoints.update().where(where).values(file_path=place))
                return dict(row)
            values = {
                "import_key": key,
                "file_path": place,
                "lines_done": 0,
                "resources_created": 0,
                "resources_skipped": 0,
                "resources_failed": 0,
                "status": "running",
                "update_date": utc_now(),
            }
            conn.execute(checkpoints.insert().values(**values))
            return values

    def _save(self, conn: Connection, file: FileRun) -> None:
        counters = file.counters
        values = {
            "status": file.status,
            "update_date": utc_now(),
            "lines_done": file.lines_done,
            "resources_created": counters.created,
            "resources_skipped": counters.skipped + counters.updated,
            "resources_failed": counters.failed,
        }
        statement = checkpoints.update().where(checkpoints.c.import_key == file.key)
        conn.execute(statement.values(**values))

    # --- batches -----------------------------------------------------------------------

    def _run_batch(
        self, file: FileRun, batch: list[Record], verdicts: Verdicts = NOT_CHECKED
    ) -> Failure | None:
        """One transaction: the batch's resources, their id map rows and the checkpoint;
        the failure that stops the run (without --continue-on-error), if any. `verdicts`:
        which of its lines passed the model check ahead (ahead.py).

        Resources naming what nothing created yet wait (self.waiting); a failure keeps
        the checkpoint before it, so a re-run reads it again."""
        with write_transaction(self.engine) as conn:
            ids = self._ids(conn, batch)
            run = BatchRun(self, conn, ids, file, verdicts)
            for record in batch:
                if record.position != 0 and not run.add(record):
                    break
            else:
                run.flush()
            ids.flush(conn)
            self._save(conn, file)
        self._report(run.failures, file)
        self._batches += 1
        self.statistics.after_batch(self._batches)
        return run.stop

    def _ids(self, conn: Connection, records: list[Record]) -> IdMap:
        ids = IdMap(self.served)
        ids.prefetch(conn, [(record.resource, record.full_url) for record in records])
        return ids

    def _count(self, file: FileRun, outcome: str) -> None:
        if outcome.startswith("unsupported:"):
            kind = outcome.removeprefix("unsupported:")
            file.counters.unsupported[kind] += 1
            self.totals.unsupported[kind] += 1
        elif outcome != "blank":
            file.counters.count(outcome)
            self.totals.count(outcome)

    # --- retries -----------------------------------------------------------------------

    def retry_waiting(self) -> None:
        """Retry the waiting resources while a pass writes something.

        Passes first keep waiting whatever still names an unknown resource; when one
        writes nothing, a pass tries them with those references as sent: a reference the
        mapping only keeps (`identifier.assigner`) is then stored unchanged, one it maps
        (`subject`) refuses the resource (ReferenceOutsideRun). What waits after a pass
        of each kind that wrote nothing has failed."""
        if self.waiting and not self.options.quiet:
            print(
                f"retrying {len(self.waiting)} resources that reference resources read after them",
                file=sys.stderr,
                flush=True,
            )
        as_sent = False
        while self.waiting:
            written = self._retry_pass(as_sent)
            if written:
                as_sent = False
            elif as_sent:
                break
            else:
                as_sent = True
        for waiting in self.waiting:  # reported all, with or without --continue-on-error
            error = waiting.error or ReferenceOutsideRun(
                "A reference names a resource that this import run (or an earlier one) "
                "did not create"
            )
            self._report([_failure(waiting.file, waiting.record, error)], waiting.file)
        self.waiting = []

    def _retry_pass(self, as_sent: bool) -> int:
        """One pass over the waiting resources, in batches; how many were written."""
        still: list[Waiting] = []
        written = 0
        queue = iter(self.waiting)
        self.waiting = []
        for batch in _chunks(queue, self.options.batch_size):
            kept, done, stop = self._retry_batch(batch, as_sent)
            still.extend(kept)
            written += done
            if stop is not None:
                raise ImportStopped(stop)
        self.waiting = still
        return written

    def _retry_batch(
        self, batch: list[Waiting], as_sent: bool
    ) -> tuple[list[Waiting], int, Failure | None]:
        kept: list[Waiting] = []
        failures: list[tuple[Failure, FileRun]] = []
        written = 0
        stop: Failure | None = None
        with write_transaction(self.engine) as conn:
            self._save(conn, batch[0].file)
            ids = self._ids(conn, [waiting.record for waiting in batch])
            for index, waiting in enumerate(batch):
                outcome = self._import_record(conn, ids, waiting.file, waiting.record, as_sent)
                if isinstance(outcome, Waiting):
                    kept.append(outcome)
                elif isinstance(outcome, Failure) and _outside_run(outcome.error):
                    kept.append(Waiting(waiting.file, waiting.record, outcome.error))
                elif isinstance(outcome, Failure):
                    failures.append((outcome, waiting.file))
                    if not self.options.continue_on_error:
                        stop = outcome
                        kept.extend(batch[index + 1 :])
                        break
                else:
                    waiting.file.pending.discard(waiting.record.position)
                    self._count(waiting.file, outcome)
                    written += 1
            ids.flush(conn)
            for file in {id(w.file): w.file for w in batch}.values():
                self._save(conn, file)
        for failure, file in failures:
            self._report([failure], file)
        return kept, written, stop

    # --- one resource ------------------------------------------------------------------

    def _import_record(
        self, conn: Connection, ids: IdMap, file: FileRun, record: Record, as_sent: bool
    ) -> str | Waiting | Failure:
        """Create (or update, or skip) one resource in a savepoint: the outcome (created,
        updated, skipped, blank, unsupported:Type), a Waiting or a Failure."""
        resource = record.resource
        if record.error is not None:
            return Failure(file.path, record.position, "line", None, Invalid(record.error))
        if resource is None:  # a blank line, or a Bundle entry without resource (DELETE)
            return "blank" if record.entry is None else "unsupported:(entry without resource)"
        kind_name = record.resource_type
        if not isinstance(resource, dict) or kind_name.startswith("("):
            error = Invalid("Not a FHIR resource: a JSON object with a resourceType is expected")
            return Failure(file.path, record.position, kind_name, None, error)
        fhir_type = self.registry.types.get(kind_name)
        if fhir_type is None:
            return f"unsupported:{kind_name}"
        body, unresolved = ids.rewrite(as_written(resource), record.names)
        if unresolved and not as_sent:
            return Waiting(file, record)
        _, ident = source_key(resource, record.full_url)
        names = [ident] if not record.full_url else [ident, record.full_url[:300]]
        digest = content_hash(body)
        known = ids.target(kind_name, ident)
        if known is not None and ids.unchanged(kind_name, ident, digest):
            ids.add(kind_name, names, known.split("/", 1)[1], digest)  # its fullUrl too
            return "skipped"
        try:
            with conn.begin_nested(), outside_run(unresolved):
                target = self._write(conn, fhir_type, body, known)
        except (FhirError, DBAPIError) as error:
            problem = _fhir(error)
        except Exception as error:  # a mapping bug must not abort a million-row load
            problem = Invalid(f"Unexpected {type(error).__name__}: {error}", status=500)
        else:
            if known is None:
                ids.add(kind_name, names, target, digest)
                return "created"
            ids.changed(kind_name, target, digest)
            return "updated"
        return _failure(file, record, problem)

    def _write(
        self, conn: Connection, fhir_type: FhirType, body: dict[str, Any], known: str | None
    ) -> str:
        """Create the resource, or write it over the one imported before (`Type/id`), as
        its next version; our id. Conditional references (`Practitioner?identifier=...`)
        name the one resource their search finds, as in a transaction Bundle."""
        body = resolve_conditional_references(conn, self.registry.types, body)
        db = Joined(conn, self.registry)
        if known is None:
            return ingest.create_id(db, SYSTEM, fhir_type, body)
        return ingest.update_id(db, SYSTEM, fhir_type, known.split("/", 1)[1], body)

    # --- reporting ---------------------------------------------------------------------

    def _fail(self, failure: Failure, file: FileRun) -> None:
        self._report([failure], file)
        if not self.options.continue_on_error:
            raise ImportStopped(failure)

    def _report(self, failures: list[Failure], file: FileRun) -> None:
        """Failures are counted, summed up by cause, go to the --errors file (after their
        batch is committed) and, the first few, to stderr."""
        if not failures:
            return
        for failure in failures:
            file.counters.failed += 1
            self.totals.failed += 1
            self.causes.add(failure)
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


@dataclass
class Planned:
    """A record that only creates (not imported before, every reference known), with what
    its create needs: the kind, the body as written, its source keys and content hash."""

    record: Record
    kind: Resource
    kind_name: str
    body: dict[str, Any]
    names: list[str]
    digest: str


class BatchRun:
    """The records of one batch (one transaction): consecutive creates of one kind go
    together through `Resource.create_many`, in a savepoint; anything else (a skip, an
    update, a failure, a reference to a resource of the pending group) goes alone through
    `Importer._import_record`, after the group before it. A group that fails in any way
    is rolled back and done again one record at a time, so that what each line becomes
    (and the failure report) is exactly what one-by-one import gives."""

    def __init__(
        self,
        importer: Importer,
        conn: Connection,
        ids: IdMap,
        file: FileRun,
        verdicts: Verdicts = NOT_CHECKED,
    ):
        self.importer, self.conn, self.ids, self.file = importer, conn, ids, file
        self.verdicts = verdicts
        self.group: list[Planned] = []
        self.claimed: set[tuple[str, str]] = set()  # the group's source keys
        self.failures: list[Failure] = []
        self.stop: Failure | None = None

    def add(self, record: Record) -> bool:
        """Take one record; False once the run must stop (a failure, without
        --continue-on-error)."""
        planned = self._plan(record)
        if planned is None:
            if not self.flush():
                return False
            outcome = self.importer._import_record(self.conn, self.ids, self.file, record, False)
            return self._settle(record, outcome)
        keys = {(planned.kind_name, name) for name in planned.names}
        if keys & self.claimed:  # the same source key again: once the first is created,
            return self.flush() and self.add(record)  # this one is a skip or an update
        if self.group and self.group[0].kind is not planned.kind and not self.flush():
            return False
        self.group.append(planned)
        self.claimed |= keys
        return True

    def flush(self) -> bool:
        """Create the pending group; False once the run must stop."""
        group, self.group, self.claimed = self.group, [], set()
        if not group:
            return True
        passed = self.verdicts.positions()
        ahead = CheckedAhead([item.body for item in group if item.record.position in passed])
        self.importer.checked_ahead += len(ahead.bodies)
        try:
            with self.conn.begin_nested(), outside_run(()), ahead:
                bodies = [item.body for item in group]
                db = Joined(self.conn, self.importer.registry)
                targets = ingest.create_ids(db, SYSTEM, group[0].kind, bodies)
        except Exception as error:  # any refusal: learn which record it was, one at a time
            if isinstance(error, DBAPIError) and (
                error.connection_invalidated or isinstance(error, InterfaceError)
            ):
                raise
            return self._one_by_one(group)
        for item, target in zip(group, targets, strict=True):
            self.ids.add(item.kind_name, item.names, target, item.digest)
            self._settle(item.record, "created")
        return True

    def _one_by_one(self, group: list[Planned]) -> bool:
        for item in group:
            outcome = self.importer._import_record(
                self.conn, self.ids, self.file, item.record, False
            )
            if not self._settle(item.record, outcome):
                return False
        return True

    def _plan(self, record: Record) -> Planned | None:
        """The record as a plain create of a kind that batches, or None (it goes alone)."""
        resource, kind_name = record.resource, record.resource_type
        if record.error is not None or not isinstance(resource, dict):
            return None
        fhir_type = self.importer.registry.types.get(kind_name)
        if fhir_type is None:
            return None
        body, unresolved = self.ids.rewrite(as_written(resource), record.names)
        _, ident = source_key(resource, record.full_url)
        if unresolved or self.ids.target(kind_name, ident) is not None:
            return None
        names = [ident] if not record.full_url else [ident, record.full_url[:300]]
        digest, may_be_conditional = hashed(body)
        try:
            if may_be_conditional:
                body = resolve_conditional_references(self.conn, self.importer.registry.types, body)
            kind = fhir_type.kind_for_create(body, check_types=False)
        except Exception:  # the record's own failure: one-by-one reports it
            return None
        if not kind.batch_creates:
            return None
        return Planned(record, kind, kind_name, body, names, digest)

    def _settle(self, record: Record, outcome: str | Waiting | Failure) -> bool:
        """Count what became of a record, in file order; False to stop the run."""
        file = self.file
        file.read_to = record.position
        if isinstance(outcome, Waiting):
            file.pending.add(record.position)
            self.importer.waiting.append(outcome)
        elif isinstance(outcome, Failure):
            file.pending.add(record.position)
            self.failures.append(outcome)
            if not self.importer.options.continue_on_error:
                self.stop = outcome
                return False
        else:
            self.importer._count(file, outcome)
        return True


def _freeze_long_lived() -> None:
    """Move what is alive now (modules, the registry, the R4B model classes and the
    statements of the types read so far) out of the collector's reach: a batch builds and
    drops hundreds of thousands of objects, and each full collection it sets off otherwise
    walks every one of those long-lived ones again (about 10 % of an import's time in a
    profile). Undone at the end of the run (`Importer.run`)."""
    gc.collect()
    gc.freeze()


def _chunks(items: Iterator[Waiting], size: int) -> Iterator[list[Waiting]]:
    while batch := list(islice(items, size)):
        yield batch


def _failure(file: FileRun, record: Record, error: FhirError) -> Failure:
    resource = record.resource if isinstance(record.resource, dict) else {}
    source_id = resource.get("id")
    return Failure(
        file.path,
        record.position,
        record.resource_type,
        str(source_id) if source_id is not None else None,
        error,
        record.entry,
    )


def _outside_run(error: FhirError) -> bool:
    return isinstance(error, ReferenceOutsideRun)


def _fhir(error: FhirError | DBAPIError) -> FhirError:
    """The resource's failure for what refused it: a FHIR error as is; the database's
    refusal of this one resource (a constraint, a value) as a clear cause. A database that
    fails itself (connection lost) is no resource's failure: it stops the run."""
    if isinstance(error, FhirError):
        return error
    if isinstance(error, IntegrityError):
        return FhirError(
            "The resource conflicts with existing data (a duplicate or a dangling link)",
            status=409,
            code="conflict",
        )
    reason = _reason(error)
    if isinstance(error, DataError):
        return Invalid(f"The database refused a value: {reason}")
    if error.connection_invalidated or isinstance(error, InterfaceError):
        raise error
    return FhirError(f"The database refused the resource: {reason}", status=500)


def _reason(error: SQLAlchemyError) -> str:
    """The driver's first line (without values: see warehouse.db.make_engine)."""
    origin = getattr(error, "orig", None)
    lines = str(origin if origin is not None else error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def summary(totals: Counters, causes: Causes, elapsed: float) -> str:
    """The closing lines: counts, failures by cause, unsupported types, time and speed."""
    handled = totals.created + totals.updated + totals.skipped + totals.failed
    rate = handled / elapsed if elapsed > 0 else 0.0
    lines = [f"total: {totals.text()} in {elapsed:.1f} s ({rate:.0f} resources/s)"]
    if causes.groups:
        lines.append(causes.text())
    if totals.unsupported:
        kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(totals.unsupported.items()))
        lines.append(f"not imported (type not served here): {kinds}")
    return "\n".join(lines)


def run_import(
    settings: Settings, paths: list[Path], options: ImportOptions, out: TextIO | None = None
) -> int:
    """Take the database's import lock, migrate, then import `paths`; the exit status:
    0 nothing failed, 1 some resource (or file) failed, 2 usage (a missing file, another
    import running), 3 the database failed (nothing is half-written), 130 interrupted."""
    out = out or sys.stdout
    missing = [str(path) for path in paths if not path.is_file()]
    if missing:
        print(f"error: no such file: {', '.join(missing)}", file=sys.stderr)
        return 2
    unreadable = [str(path) for path in paths if not os.access(path, os.R_OK)]
    if unreadable:
        print(f"error: cannot read (permissions): {', '.join(unreadable)}", file=sys.stderr)
        return 2
    try:
        with import_lock(settings.database_url, options.wait):
            migrate(settings.database_url)
            return _import_all(settings, paths, options, out)
    except ImportRunning as busy:
        print(busy, file=sys.stderr)
        return 2


def _import_all(settings: Settings, paths: list[Path], options: ImportOptions, out: TextIO) -> int:
    importer = Importer(settings, options, out)
    started = time.monotonic()
    status = 0
    try:
        importer.run(paths)
    except ImportStopped as stop:
        importer.finish()  # the lines of the files read so far
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
    except SQLAlchemyError as error:
        print(
            f"error: the database failed ({type(error).__name__}: {_reason(error)}); every "
            "committed batch is kept: run the same command again",
            file=sys.stderr,
        )
        status = 3
    finally:
        importer.engine.dispose()
    print(summary(importer.totals, importer.causes, time.monotonic() - started), file=out)
    return status or (1 if importer.totals.failed else 0)
