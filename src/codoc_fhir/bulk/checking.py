"""The R4B validation of the next batch's resources in worker processes, while the main
process writes the current one (`ImportOptions.check_processes`).

Validation (the JSON types and the fhir.resources model of each body, `Resource.checked`)
is about a third of an import's CPU time and needs nothing from the database. A worker
validates each record of a batch as read from its file, `id` and `meta` left out, before
its references are rewritten to ours: those rewrites only put a `Type/id` string where a
reference string was, so a body valid as read is valid as written. What a worker answers
is, per record, the index of the kind (in its FhirType) that validated it, or None. The
main process still chooses the kind of the rewritten body itself; only when it is the
kind the worker validated with is the body's own check skipped (`create_many(...,
checked=True)`). Anything the worker refused, or could not tell, is checked in the main
process as before, so failures and their messages do not change.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any

from codoc_fhir.config import Settings
from codoc_fhir.resources.registry import Registry, build_registry

# Set up in each worker by `_start`: the registry built from the run's settings, so that
# its kinds come in the same order as the main process's (kind indexes are compared).
_REGISTRY: Registry | None = None
DROPPED_FIELDS = ("id", "meta")


def _start(settings: Settings) -> None:
    global _REGISTRY
    _REGISTRY = build_registry(settings)


def _check(resources: Sequence[Any]) -> list[int | None]:
    """Per resource: the index of the kind whose `checked` passed it, or None."""
    assert _REGISTRY is not None
    answers: list[int | None] = []
    for resource in resources:
        answers.append(_kind_that_checks(_REGISTRY, resource))
    return answers


def _kind_that_checks(registry: Registry, resource: Any) -> int | None:
    if not isinstance(resource, dict):
        return None
    fhir_type = registry.types.get(str(resource.get("resourceType")))
    if fhir_type is None:
        return None
    body = {key: value for key, value in resource.items() if key not in DROPPED_FIELDS}
    try:
        kind = fhir_type.kind_for_create(body)
        kind.checked(body)
    except Exception:  # the main process checks it again and reports what it finds
        return None
    return fhir_type.kinds.index(kind)


class Checker:
    """A pool of `processes` workers validating batches ahead; `submit` hands one batch's
    resources over, the future answers `_check`'s list."""

    def __init__(self, settings: Settings, processes: int) -> None:
        # fork: the workers start at once with the modules already imported; they never
        # touch the parent's database connections and leave through os._exit.
        self.pool = ProcessPoolExecutor(
            processes, mp_context=get_context("fork"), initializer=_start, initargs=(settings,)
        )
        self.processes = processes

    def submit(self, resources: list[Any]) -> list[Future[list[int | None]]]:
        """The batch split across the workers: one future per slice, in order."""
        size = max(1, -(-len(resources) // self.processes))
        return [
            self.pool.submit(_check, resources[start : start + size])
            for start in range(0, len(resources), size)
        ]

    def close(self) -> None:
        self.pool.shutdown(cancel_futures=True)


def answers(futures: list[Future[list[int | None]]]) -> list[int | None]:
    """The kinds `submit`'s futures found, in the batch's order."""
    found: list[int | None] = []
    for future in futures:
        found.extend(future.result())
    return found
