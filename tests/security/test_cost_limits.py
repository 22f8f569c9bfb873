"""Cost limits (CONTRACT 8): search values, page bytes, statement timeout, opaque cursors."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, text

from codoc_fhir.warehouse.schema import dwh_data
from tests.factories import make_document, make_patient, seed_procedure_context

BASE = "/v4.3.0"


@contextmanager
def counted_statements(engine: Any) -> Iterator[list[str]]:
    """The SQL statements the application runs meanwhile (access log writes left out: they
    come from a background thread, for earlier requests too)."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "fhir_access_log" not in statement:
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def codes(count: int) -> str:
    return "&".join(f"code=C{number}" for number in range(count))


def test_300_repeated_values_are_refused_before_any_sql(client, engine):
    seed_procedure_context(engine)
    app_engine = client.app.state.server.engine
    with counted_statements(app_engine) as statements:
        response = client.get(f"{BASE}/Procedure?{codes(300)}")
    assert response.status_code == 400
    issue = response.json()["issue"][0]
    assert issue["code"] == "too-costly"
    assert "100" in issue["diagnostics"]
    assert statements == []


def test_comma_separated_values_count_too(client, engine):
    seed_procedure_context(engine)
    values = ",".join(f"C{number}" for number in range(60))
    response = client.get(f"{BASE}/Procedure?code={values}&code={values}")
    assert response.status_code == 400
    assert response.json()["issue"][0]["code"] == "too-costly"
    form = {"code": values, "date": "ge2020"}  # 61 values, posted: within the limit
    assert client.post(f"{BASE}/Procedure/_search", data=form).status_code == 200


def test_100_values_are_searched(client, engine):
    seed_procedure_context(engine)
    response = client.get(f"{BASE}/Procedure?{codes(100)}")
    assert response.status_code == 200
    assert response.json()["total"] == 0


def test_the_limit_is_a_setting(make_client, engine):
    seed_procedure_context(engine)
    client = make_client(CODOC_MAX_SEARCH_VALUES="3")
    assert client.get(f"{BASE}/Procedure?code=A,B,C").status_code == 200
    assert client.get(f"{BASE}/Procedure?code=A,B,C&code=D").status_code == 400


def test_a_batch_search_entry_is_held_to_the_same_limit(client, engine):
    seed_procedure_context(engine)
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"request": {"method": "GET", "url": f"Procedure?{codes(300)}"}},
            {"request": {"method": "GET", "url": "Procedure?code=C1"}},
        ],
    }
    response = client.post(BASE, json=bundle)
    assert response.status_code == 200
    first, second = response.json()["entry"]
    assert first["response"]["status"].startswith("400")
    assert first["response"]["outcome"]["issue"][0]["code"] == "too-costly"
    assert second["response"]["status"].startswith("200")


# --- page size ------------------------------------------------------------------------------


def test_a_page_over_the_byte_limit_ends_early_with_a_next_link(make_client, engine):
    patient = make_patient(engine)
    big = "<p>" + "x" * 40_000 + "</p>"  # each DocumentReference carries it twice (base64)
    documents = {make_document(engine, patient_num=patient, text=big) for _ in range(12)}
    limit = 300_000
    client = make_client(CODOC_MAX_PAGE_BYTES=str(limit))
    url: str | None = f"{BASE}/DocumentReference?_count=1000"
    seen: list[str] = []
    pages = 0
    while url:
        response = client.get(url)
        assert response.status_code == 200
        assert len(response.content) <= limit
        bundle = response.json()
        assert bundle["total"] == 12
        seen += [entry["resource"]["id"] for entry in bundle.get("entry", [])]
        url = next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None)
        pages += 1
    assert pages > 1
    assert sorted(seen) == sorted(str(num) for num in documents)  # each exactly once


def test_a_single_resource_over_the_limit_is_still_answered(make_client, engine):
    patient = make_patient(engine)
    make_document(engine, patient_num=patient, text="y" * 200_000)
    make_document(engine, patient_num=patient, text="z" * 200_000)
    client = make_client(CODOC_MAX_PAGE_BYTES="100000")
    bundle = client.get(f"{BASE}/DocumentReference").json()
    assert len(bundle["entry"]) == 1  # paging moves on, one resource per page
    nxt = next(link["url"] for link in bundle["link"] if link["relation"] == "next")
    assert len(client.get(nxt).json()["entry"]) == 1


# --- statement timeout ----------------------------------------------------------------------


def test_a_statement_over_the_timeout_is_503_too_costly(make_client, engine):
    if engine.dialect.name != "postgresql":
        pytest.skip("CODOC_STATEMENT_TIMEOUT applies to PostgreSQL (SQLite has no such knob)")
    seed_procedure_context(engine)
    client = make_client(CODOC_STATEMENT_TIMEOUT="0.5")
    locked = threading.Event()
    release = threading.Event()

    def hold_lock() -> None:  # a statement that cannot finish in time: it waits on a lock
        with engine.begin() as conn:
            conn.execute(text(f"LOCK TABLE {dwh_data.name} IN ACCESS EXCLUSIVE MODE"))
            locked.set()
            release.wait(10)

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        assert locked.wait(10)
        response = client.get(f"{BASE}/Procedure?code=COLO001")
    finally:
        release.set()
        holder.join()
    assert response.status_code == 503
    assert response.json()["issue"][0]["code"] == "too-costly"
    assert client.get(f"{BASE}/Procedure?code=COLO001").status_code == 200


# --- cursors --------------------------------------------------------------------------------


def _patients(engine: Any) -> None:
    for family, year in (("Zebulon", 1950), ("Martin", 1960), ("Durand", 1970)):
        make_patient(engine, lastname=family, birth_date=datetime(year, 1, 1, tzinfo=UTC))


def _next(bundle: dict[str, Any]) -> str:
    return next(link["url"] for link in bundle["link"] if link["relation"] == "next")


def _token(url: str) -> str:
    return url.split("_cursor=")[1].split("&")[0]


@pytest.mark.parametrize("sort", ["family", "birthdate", "-family"])
def test_cursors_are_opaque_and_tampering_is_a_400(client, engine, sort):
    _patients(engine)
    first = client.get(f"{BASE}/Patient?_sort={sort}&_count=1").json()
    token = _token(_next(first))
    shown = first["entry"][0]["resource"]["name"][0]["family"]
    decoded = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    assert shown.encode() not in decoded and shown not in token
    for forged in (
        token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB"),
        base64.urlsafe_b64encode(b'{"v":[1],"k":0,"p":1,"b":false,"s":"family"}').decode(),
        base64.urlsafe_b64encode(b'{"v":["x"],"k":"a","p":[],"b":1,"s":"birthdate"}').decode(),
        "%00%ff",
    ):
        response = client.get(f"{BASE}/Patient?_sort={sort}&_count=1&_cursor={forged}")
        assert response.status_code == 400, response.text
        assert response.json()["issue"][0]["expression"] == ["_cursor"]
    assert client.get(_next(first)).status_code == 200


def test_a_cursor_of_another_type_is_refused(client, engine):
    _patients(engine)
    token = _token(_next(client.get(f"{BASE}/Patient?_count=1").json()))
    response = client.get(f"{BASE}/Procedure?_count=1&_cursor={token}")
    assert response.status_code == 400


def test_servers_on_one_database_share_cursors_other_keys_do_not(make_client, engine):
    _patients(engine)
    first, second = make_client(), make_client()
    url = _next(first.get(f"{BASE}/Patient?_sort=family&_count=1").json())
    assert second.get(url).json()["entry"][0]["resource"]["name"][0]["family"] == "Martin"
    keyed = make_client(CODOC_CURSOR_KEY="another-key")
    assert keyed.get(url).status_code == 400
    again = make_client(CODOC_CURSOR_KEY="another-key")
    keyed_url = _next(keyed.get(f"{BASE}/Patient?_sort=family&_count=1").json())
    assert again.get(keyed_url).status_code == 200
