"""The planner's statistics of the tables an import fills, kept up to date as it runs.

A fresh warehouse's statistics say its tables are empty, and autovacuum only catches up
now and then: the look-ups of later batches (identifiers, id map, concepts) would be
planned on what is no longer there. The importer asks for a refresh each time it has
doubled its batches (2, 4, 8, 16...): the statistics stay within a factor of two of the
tables' size, which is all those plans depend on, for about twenty ANALYZE in a run of
millions (each reads a sample of 30,000 rows a table; every 20 batches, they took a
third of such a run).

The ANALYZE runs in a thread, on a connection of its own, while the import goes on: it
reads what the import has committed and takes a lock that does not block inserts. Run
in line, the seven of a 100,000-resource import stood still for 1.2 s of its 28. A
refresh asked for while the last one still runs is dropped (the next doubling asks
again); one that fails is logged and dropped: statistics speed the look-ups up and
decide nothing they return.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor

from sqlalchemy import Engine, text

TABLES = (
    "dwh_patient",
    "dwh_patient_ipphist",
    "dwh_data",
    "dwh_thesaurus_data",
    "fhir_token",
    "dwh_resource_history",
    "fhir_import_id_map",
)
FIRST_AFTER = 2  # batches before the first refresh

log = logging.getLogger(__name__)


class Statistics:
    """Refreshes in the background (PostgreSQL; nothing on SQLite, whose planner has no
    such statistics to go stale); `close` waits for the one running."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.worker: ThreadPoolExecutor | None = None
        self.running: Future[None] | None = None

    def after_batch(self, batches: int) -> None:
        """Refresh if `batches` (done so far) is a power of two from FIRST_AFTER on."""
        if batches >= FIRST_AFTER and batches & (batches - 1) == 0:
            self.refresh()

    def refresh(self) -> None:
        if self.engine.dialect.name != "postgresql":
            return
        if self.running is not None and not self.running.done():
            return
        if self.worker is None:
            self.worker = ThreadPoolExecutor(1, thread_name_prefix="codoc-analyze")
        self.running = self.worker.submit(self._analyze)
        self.running.add_done_callback(_log_failure)

    def close(self) -> None:
        if self.worker is not None:
            self.worker.shutdown(wait=True)
            self.worker = None

    def _analyze(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text(f"ANALYZE {', '.join(TABLES)}"))
            conn.commit()


def _log_failure(done: Future[None]) -> None:
    if (error := done.exception()) is not None:
        log.warning("ANALYZE during the import failed (the import goes on): %s", error)
