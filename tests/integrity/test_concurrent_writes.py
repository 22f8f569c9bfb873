"""Concurrent writers against a real `codoc-fhir serve --workers 2`, on both backends.

Each test reproduces a case an independent test found (lost updates, two winners of one
If-Match, duplicate conditional creates, spurious 409s on a new code, deadlocked
transactions answered 500) and asserts the exact figures the contract promises.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, func, select

from codoc_fhir.warehouse import schema
from tests.conftest import empty_tables
from tests.security.servers import running_server

JSON = {"Content-Type": "application/fhir+json"}


@pytest.fixture
def api(database_url: str, engine: Engine, tmp_path: Any) -> Iterator[str]:
    """The base URL of a two-worker server on empty tables."""
    empty_tables(engine)
    env = {
        "CODOC_DATABASE_URL": database_url,
        "CODOC_RATE_LIMIT_ANONYMOUS": "off",
        "CODOC_RATE_LIMIT_AUTHENTICATED": "off",
    }
    with running_server(tmp_path, env, workers=2) as url:
        yield f"{url}/v4.3.0"


def patient(ipp: str, family: str = "Martin") -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"use": "usual", "value": ipp}],
        "name": [{"family": family, "given": ["Anne"]}],
        "gender": "female",
        "birthDate": "1970-01-01",
    }


def procedure(patient_id: str, code: str, identifier: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "Procedure",
        "status": "completed",
        "code": {"coding": [{"code": code, "display": f"Act {code}"}]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "performedDateTime": "2024-01-15T14:00:00Z",
    }
    if identifier:
        body["identifier"] = [{"use": "usual", "value": identifier}]
    return body


def all_at_once(count: int, call: Callable[[httpx.Client, int], httpx.Response]) -> list[Any]:
    """Run `call` from `count` threads released together; their responses, in order."""
    barrier = threading.Barrier(count)

    def one(index: int) -> httpx.Response:
        with httpx.Client(timeout=60) as client:
            barrier.wait()
            return call(client, index)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(one, range(count)))


def created(api: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = httpx.post(f"{api}/{path}", json=body, headers=JSON, timeout=30)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def version_of(api: str, path: str) -> int:
    answer = httpx.get(f"{api}/{path}", timeout=30)
    assert answer.status_code == 200, answer.text
    return int(answer.json()["meta"]["versionId"])


def test_read_then_put_with_if_match_loses_no_update(api):
    """12 clients x 15 rounds of read -> PUT If-Match: final version = 1 + successes."""
    patient_id = created(api, "Patient", patient("IPP-RACE"))["id"]
    clients, rounds = 12, 15

    def client_rounds(client: httpx.Client, index: int) -> Counter[int]:
        seen: Counter[int] = Counter()
        for round_number in range(rounds):
            read = client.get(f"{api}/Patient/{patient_id}")
            body = patient("IPP-RACE", family=f"Martin-{index}-{round_number}")
            headers = {**JSON, "If-Match": read.headers["etag"]}
            answer = client.put(f"{api}/Patient/{patient_id}", json=body, headers=headers)
            seen[answer.status_code] += 1
        return seen

    statuses = sum(all_at_once(clients, client_rounds), Counter())
    assert set(statuses) <= {200, 412}, statuses
    assert statuses[200] + statuses[412] == clients * rounds
    assert statuses[200] >= rounds  # at least one writer gets through each round
    assert version_of(api, f"Patient/{patient_id}") == 1 + statuses[200]


def test_one_if_match_version_has_exactly_one_winner(api):
    patient_id = created(api, "Patient", patient("IPP-ONCE"))["id"]
    for _ in range(6):
        version = version_of(api, f"Patient/{patient_id}")

        def put(client: httpx.Client, index: int, version: int = version) -> httpx.Response:
            headers = {**JSON, "If-Match": f'W/"{version}"'}
            body = patient("IPP-ONCE", family=f"Winner-{index}")
            return client.put(f"{api}/Patient/{patient_id}", json=body, headers=headers)

        statuses = sorted(answer.status_code for answer in all_at_once(8, put))
        assert statuses == [200] + [412] * 7
        assert version_of(api, f"Patient/{patient_id}") == version + 1


def test_updates_without_if_match_are_serialised(api):
    """Every successful update yields a distinct version, one more than the one before."""
    patient_id = created(api, "Patient", patient("IPP-SERIAL"))["id"]

    def put_five(client: httpx.Client, index: int) -> list[int]:
        versions = []
        for step in range(5):
            body = patient("IPP-SERIAL", family=f"Serial-{index}-{step}")
            answer = client.put(f"{api}/Patient/{patient_id}", json=body, headers=JSON)
            assert answer.status_code == 200, answer.text
            versions.append(int(answer.json()["meta"]["versionId"]))
        return versions

    versions = [version for run in all_at_once(10, put_five) for version in run]
    assert sorted(versions) == list(range(2, 52))
    assert version_of(api, f"Patient/{patient_id}") == 51


def test_patch_and_delete_with_the_same_if_match_have_one_winner(api):
    patient_id = created(api, "Patient", patient("IPP-PD"))["id"]
    act = created(api, "Procedure", procedure(patient_id, "PD1"))["id"]

    def patch_or_delete(client: httpx.Client, index: int) -> httpx.Response:
        headers = {**JSON, "If-Match": 'W/"1"'}
        url = f"{api}/Procedure/{act}"
        if index % 2:
            return client.delete(url, headers=headers)
        return client.patch(
            url, json={"performedDateTime": "2024-02-01T10:00:00Z"}, headers=headers
        )

    statuses = sorted(answer.status_code for answer in all_at_once(8, patch_or_delete))
    winners = [status for status in statuses if status in (200, 204)]
    assert len(winners) == 1, statuses
    # After a PATCH the others' version is stale; after a DELETE the resource is gone.
    losers = {412} if winners == [200] else {404, 410}
    assert set(statuses) - {winners[0]} <= losers, statuses


def test_concurrent_conditional_creates_store_exactly_one(api, engine):
    patient_id = created(api, "Patient", patient("IPP-COND"))["id"]
    for round_number in range(5):
        identifier = f"ACT-{round_number}"

        def post(client: httpx.Client, index: int, identifier: str = identifier) -> Any:
            headers = {**JSON, "If-None-Exist": f"identifier={identifier}"}
            body = procedure(patient_id, "COND", identifier)
            return client.post(f"{api}/Procedure", json=body, headers=headers)

        answers = all_at_once(20, post)
        statuses = sorted(answer.status_code for answer in answers)
        assert statuses == [200] * 19 + [201], [answer.text for answer in answers]
        assert len({answer.json()["id"] for answer in answers}) == 1
        with engine.connect() as conn:
            stored = conn.execute(
                select(func.count())
                .select_from(schema.dwh_data)
                .where(schema.dwh_data.c.id_data_source == identifier)
            ).scalar_one()
        assert stored == 1


def test_concurrent_first_use_of_new_codes_never_fails(api, engine):
    patient_id = created(api, "Patient", patient("IPP-CODES"))["id"]

    def post(client: httpx.Client, index: int) -> httpx.Response:
        body = procedure(patient_id, f"NEW{index % 4}")
        return client.post(f"{api}/Procedure", json=body, headers=JSON)

    answers = all_at_once(40, post)
    assert [answer.status_code for answer in answers] == [201] * 40, [
        answer.text for answer in answers if answer.status_code != 201
    ]
    concepts = schema.dwh_thesaurus_data
    with engine.connect() as conn:
        codes = conn.execute(
            select(concepts.c.concept_code).where(concepts.c.concept_code.like("NEW%"))
        ).scalars()
        assert sorted(codes) == ["NEW0", "NEW1", "NEW2", "NEW3"]


def transaction(ipps: list[str]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": patient(ipp), "request": {"method": "POST", "url": "Patient"}}
            for ipp in ipps
        ],
    }


def test_transactions_racing_on_the_same_identifiers_one_wins(api, engine):
    """Opposite insertion orders used to deadlock into a 500: one wins, the other 409."""
    for round_number in range(5):
        ipps = [f"IPP-{round_number}-A", f"IPP-{round_number}-B", f"IPP-{round_number}-C"]

        def post(client: httpx.Client, index: int, ipps: list[str] = ipps) -> httpx.Response:
            order = ipps if index == 0 else list(reversed(ipps))
            return client.post(api, json=transaction(order), headers=JSON)

        answers = all_at_once(2, post)
        statuses = sorted(answer.status_code for answer in answers)
        assert statuses == [200, 409], [answer.text for answer in answers]
        loser = next(answer for answer in answers if answer.status_code == 409)
        assert loser.json()["resourceType"] == "OperationOutcome"
        with engine.connect() as conn:
            stored = conn.execute(
                select(func.count())
                .select_from(schema.dwh_patient_ipphist)
                .where(schema.dwh_patient_ipphist.c.hospital_patient_id.in_(ipps))
            ).scalar_one()
        assert stored == 3
