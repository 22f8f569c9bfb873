"""Progress of `codoc-fhir import`: a tqdm bar on a terminal, else a line every N seconds."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from codoc_fhir.bulk.importer import Counters, ImportOptions


class Progress:
    """Progress through one file, in bytes (NDJSON) or entries (Bundle)."""

    def __init__(
        self, name: str, total: int, unit: str, options: ImportOptions, out: TextIO
    ) -> None:
        self.name, self.total, self.unit = name, total, unit
        self.every = options.report_every
        self.done = 0
        self.last = time.monotonic()
        self.stream = sys.stderr
        self.quiet = options.quiet
        self.bar: Any = None
        if not self.quiet and self.stream.isatty():
            from tqdm import tqdm

            self.bar = tqdm(
                total=total,
                unit=unit,
                unit_scale=unit == "B",
                desc=name,
                file=self.stream,
                dynamic_ncols=True,
            )

    def advance(self, units: int, counters: Counters) -> None:
        """`units` more bytes or entries are done (committed)."""
        self.done += units
        if self.bar is not None:
            self.bar.update(units)
            self.bar.set_postfix(created=counters.created, failed=counters.failed, refresh=False)
            return
        now = time.monotonic()
        if not self.quiet and now - self.last >= self.every:
            self.last = now
            share = 100 * self.done / self.total if self.total else 100.0
            print(
                f"{self.name}: {share:.0f}% ({self.done} of {self.total} {self.unit}), "
                f"{counters.text()}",
                file=self.stream,
                flush=True,
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
