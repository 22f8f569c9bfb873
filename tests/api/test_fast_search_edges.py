"""The fast search's edges: the answers it leaves to the generic search (a next page, a page
over its byte budget) and the query spellings both paths read alike are the generic ones,
headers included; on PostgreSQL only (SQLite has no fast search)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, select

from codoc_fhir.warehouse.schema import dwh_patient
from tests.api.test_fast_search import CURSOR, PROCEDURE

VARYING = ("date", "server", "content-length")  # content-length: the cursor's length varies


def seen(client: Any, path: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """Status, every header but those that vary between two answers, and the body."""
    response = client.get(path, headers=headers or {})
    kept = {name: value for name, value in response.headers.items() if name not in VARYING}
    return {
        "status": response.status_code,
        "headers": kept,
        "body": CURSOR.sub(b"_cursor=...", response.content),
    }


@pytest.fixture
def three(make_client: Any, engine: Engine) -> dict[str, Any]:
    """One patient with three Procedures, the fast and the generic app, and a fast app whose
    pages hold less than one Procedure's bytes (CODOC_MAX_PAGE_BYTES)."""
    if engine.dialect.name != "postgresql":
        pytest.skip("no fast search on SQLite")
    fast = make_client()
    apps = {
        "fast": fast,
        "generic": make_client(CODOC_FAST_READ="false"),
        "small pages": make_client(CODOC_MAX_PAGE_BYTES=str(64 * 1024 + 300)),
    }
    with engine.begin() as conn:
        conn.execute(dwh_patient.insert().values(patient_num=41))
        patient = conn.scalar(select(dwh_patient.c.patient_num))
    for day in ("2023-02-01", "2023-06-01", "2024-02-01"):
        body = {**PROCEDURE, "subject": {"reference": f"Patient/{patient}"}}
        body["performedDateTime"] = f"{day}T10:00:00Z"
        assert fast.post("/v4.3.0/Procedure", json=body).status_code == 201
    return {**apps, "patient": patient}


def test_handed_on_and_spelled_alike_answer_as_the_generic_search(three: dict[str, Any]) -> None:
    patient = three["patient"]
    fast, generic, small = three["fast"], three["generic"], three["small pages"]
    taken = [
        f"/v4.3.0/Procedure?subject=Patient%2F{patient}",  # percent-encoded
        f"/v4.3.0/Procedure?subject=Patient/{patient}&subject=Patient/{patient}",
        f"/v4.3.0/Procedure?subject=Patient/{patient}&date=2023",
        f"/v4.3.0/Procedure?subject=Patient/{patient}&date=ge2023-01-01,lt2000-01-01",
        f"/v4.3.0/Procedure?subject=Patient/{patient}&_count=3",
        f"/v4.3.0/Procedure?subject=Patient/{patient}&_total=accurate",
        f"/v4.3.0/Procedure?subject=Patient/{patient}&_count=2",  # a next page
        f"/v4.3.0/Procedure?subject=Patient/{patient}&date=ge2023-01-01&_count=1",
    ]
    handed = [
        f"/v4.3.0/Procedure?subject=Patient/{patient}&_count=0",
        "/v4.3.0/Procedure?date=ge2023-01-01",  # not one patient's: the generic count
    ]
    searcher = fast.app.state.fast_searcher
    for path in [*taken, *handed]:
        before = searcher.served
        assert seen(fast, path) == seen(generic, path), path
        assert searcher.served == before + (path in taken), path
    lenient = {"Prefer": "handling=lenient"}
    path = f"/v4.3.0/Procedure?subject=Patient/{patient}&unknown=1"
    assert seen(fast, path, lenient) == seen(generic, path, lenient)
    path = f"/v4.3.0/Procedure?subject=Patient/{patient}"
    before = small.app.state.fast_searcher.served
    over_budget = seen(small, path)
    assert small.app.state.fast_searcher.served == before  # over its bytes: generic
    assert b"_cursor=" in over_budget["body"] and over_budget["status"] == 200


def pages(client: Any, path: str) -> list[list[str]]:
    """The ids of every page, following the next links from `path`."""
    found: list[list[str]] = []
    url: str | None = path
    while url is not None:
        bundle = client.get(url).json()
        found.append([entry["resource"]["id"] for entry in bundle.get("entry", [])])
        links = {link["relation"]: link["url"] for link in bundle["link"]}
        url = links.get("next")
    return found


def test_the_fast_first_page_links_to_the_generic_next_pages(three: dict[str, Any]) -> None:
    """The next link the fast search writes leads where the generic one leads: every
    Procedure once, in the generic order (the later pages are the generic search's)."""
    path = f"/v4.3.0/Procedure?subject=Patient/{three['patient']}&_count=2"
    searcher = three["fast"].app.state.fast_searcher
    before = searcher.served
    fast_pages = pages(three["fast"], path)
    assert searcher.served == before + 1  # the first page only: a cursor goes generic
    assert fast_pages == pages(three["generic"], path)
    assert [len(page) for page in fast_pages] == [2, 1]
