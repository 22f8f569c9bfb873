"""The JSON types and R4B model check of NDJSON lines, run ahead in a process of its own.

That check is about a third of an import's CPU (docs/PERFORMANCE.md) and the importer is
one process, so a second core sat idle. Here a checking process is given each batch's
lines a few batches before the importer writes them; the importer then skips the check for
the resources whose line passed (fhir/json_types.CheckedAhead) and checks the others
itself, so that a failure is reported exactly as it is without this. Only those two
checks move: the kinds' own checks, the mapping and every write stay in the importer, in
file order, in the same transactions.

The checking process is started with `spawn` (a fork would copy the importer's database
connections) on the first file worth it, and serves the whole run. Should it die, the
importer checks everything itself from then on.
"""

from __future__ import annotations

import os
import signal
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from itertools import islice
from multiprocessing import get_context

import orjson

from codoc_fhir.bulk.files import Record, as_written
from codoc_fhir.fhir.validation import validate_resource

BATCHES_AHEAD = 3  # batches handed to the checking process before the importer needs them
AUTO_MIN_BYTES = 1024 * 1024  # smaller files: the process's start costs more than it saves
MODES = ("auto", "on", "off")


def _quiet_on_interrupt() -> None:
    """In the checking process: Ctrl-C is the importer's to handle (it reports what is
    committed, then closes this process); a traceback from here would only add noise."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def passed(lines: list[bytes | None]) -> bytes:
    """One byte per line, 1 where the resource it holds (as the import writes it: without
    `id` and `meta`) passes both checks. Runs in the checking process."""
    return bytes(_passes(line) for line in lines)


def _passes(line: bytes | None) -> bool:
    if line is None:
        return False
    try:
        resource = orjson.loads(line)
        validate_resource(as_written(resource), resource["resourceType"])
    except Exception:  # any refusal, of any kind: the importer's own check tells it
        return False
    return True


class Verdicts:
    """What the checking process said of one batch: the positions whose line passed, told
    on first ask; none when the batch was not sent, or (unless `wait`) when the process has
    not answered yet. By default the importer does not wait for it: checking a batch itself
    costs less than waiting, and a process that falls behind (its start, a busy core) so
    gets less to do."""

    def __init__(
        self, records: list[Record], future: Future[bytes] | None, wait: bool = False
    ) -> None:
        self._records = records
        self._future = future
        self._wait = wait
        self._passed: set[int] | None = None

    def positions(self) -> set[int]:
        if self._passed is None:
            self._passed = set()
            flags = self._flags()
            for record, flag in zip(self._records, flags, strict=False):
                if flag:
                    self._passed.add(record.position)
        return self._passed

    def _flags(self) -> bytes:
        if self._future is None or not (self._wait or self._future.done()):
            return b""
        try:
            return self._future.result()
        except Exception:  # the process died (BrokenProcessPool): the importer checks these
            return b""


NOT_CHECKED = Verdicts([], None)


class CheckAhead:
    """The checking process of one import run, and the batches it is ahead on.

    `mode`: `auto` checks ahead NDJSON files of AUTO_MIN_BYTES or more on a machine of
    more than one core, and never waits for the process; `on` checks every NDJSON file
    ahead and waits for each verdict; `off` checks nothing ahead."""

    def __init__(self, mode: str = "auto") -> None:
        if mode not in MODES:
            raise ValueError(f"check ahead: one of {', '.join(MODES)}, not {mode!r}")
        self.mode = mode
        self._pool: ProcessPoolExecutor | None = None
        self._broken = False

    def wanted(self, size: int) -> bool:
        """Whether a file of `size` bytes (NDJSON) is checked ahead."""
        if self.mode == "off" or self._broken:
            return False
        if self.mode == "on":
            return True
        return size >= AUTO_MIN_BYTES and (os.cpu_count() or 1) > 1

    def batches(
        self, pairs: Iterator[tuple[Record, bytes | None]], size: int, ahead: bool
    ) -> Iterator[tuple[list[Record], Verdicts]]:
        """The records in batches of `size`, each with its verdicts; with `ahead`, the
        lines of the next BATCHES_AHEAD batches are being checked meanwhile."""
        queue: deque[tuple[list[Record], Verdicts]] = deque()
        while chunk := list(islice(pairs, size)):
            records = [record for record, _ in chunk]
            future = self._submit([line for _, line in chunk]) if ahead else None
            queue.append((records, Verdicts(records, future, wait=self.mode == "on")))
            if len(queue) > (BATCHES_AHEAD if future is not None else 0):
                yield queue.popleft()
        yield from queue

    def _submit(self, lines: list[bytes | None]) -> Future[bytes] | None:
        if self._broken:
            return None
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                1, mp_context=get_context("spawn"), initializer=_quiet_on_interrupt
            )
        try:
            future = self._pool.submit(passed, lines)
        except BrokenProcessPool:
            self._broken = True
            return None
        future.add_done_callback(self._note_death)
        return future

    def _note_death(self, future: Future[bytes]) -> None:
        if not future.cancelled() and isinstance(future.exception(), BrokenProcessPool):
            self._broken = True  # the next files are checked by the importer alone

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
