"""Section 9 end to end: real-world data loads whole and comes back unchanged.

Each source (carebundle, the official R4B examples, Synthea-style Bundles) is loaded by
each path (a transaction Bundle posted to /v4.3.0/, `codoc-fhir import` of NDJSON files
in no dependency order), on each backend, once per module; the four checks then look at
what that load left. Every check lists all of its problems in its assertion message.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import empty_tables, flush_access_log
from tests.fhir_client import FhirTestClient
from tests.realworld import loading
from tests.realworld.sources import SOURCES

LOADS = [(source, path) for source in SOURCES for path in ("transaction", "import")]


@dataclass
class Loaded:
    client: FhirTestClient
    run: loading.Run

    def report(self, problems: list[str]) -> str:
        head = f"{self.run.source} by {self.run.path}: {len(problems)} problems"
        if self.run.failures:
            head += f"\nthe load reported {len(self.run.failures)} failures, first ones:\n"
            head += "\n".join(self.run.failures[:5])
        return head + "\n" + "\n".join(problems[:80])


@pytest.fixture(scope="module", params=LOADS, ids=[f"{s}-{p}" for s, p in LOADS])
def loaded(
    request: pytest.FixtureRequest,
    app: Any,
    engine: Any,
    database_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Loaded]:
    source_name, path = request.param
    flush_access_log(app)
    empty_tables(engine)
    source = SOURCES[source_name]()
    with FhirTestClient(app) as client:
        if path == "transaction":
            run = loading.load_by_transaction(client, source)
        else:
            folder = tmp_path_factory.mktemp(f"import-{source_name}")
            run = loading.load_by_import(database_url, engine, folder, source)
        yield Loaded(client, run)
    flush_access_log(app)


def test_the_load_reports_no_failure(loaded):
    assert loaded.run.failures == [], loaded.report([])


def test_every_resource_is_stored(loaded):
    problems = loading.stored_counts(loaded.client, loaded.run)
    assert problems == [], loaded.report(problems)


def test_every_resource_reads_back_as_sent(loaded):
    problems = loading.round_trip(loaded.client, loaded.run)
    assert problems == [], loaded.report(problems)


def test_source_codings_find_what_was_sent_with_them(loaded):
    assert loading.source_codings(loaded.run), "the source has codings to search"
    problems = loading.token_searches(loaded.client, loaded.run)
    assert problems == [], loaded.report(problems)


def test_everything_answers_each_patients_compartment(loaded):
    problems = loading.everything(loaded.client, loaded.run)
    assert problems == [], loaded.report(problems)
