"""The fast search (api/fast_search.py) answers exactly what the generic search answers.

Two apps on the same database, one with the fast paths (the default on PostgreSQL) and one
with CODOC_FAST_READ=false, are asked the same searches by the same callers: status, body
(the whole Bundle: entries, order, total, links, fullUrls) and the headers a client uses
must be identical, whichever path answered, and the plain ones must have been answered by
the fast search. On SQLite there is no fast search at all.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import Engine, select

from codoc_fhir.demo import load_demo
from codoc_fhir.resources.concepts import fact_resource_name
from codoc_fhir.warehouse.schema import dwh_data, dwh_patient
from tests.conftest import make_settings
from tests.security.tokens import AUTH_ENV, bearer, hs256

CURSOR = re.compile(rb"_cursor=[^\"&]*")
HEADERS = ("content-type", "content-length", "x-ratelimit-limit", "www-authenticate")
PROCEDURE = {
    "resourceType": "Procedure",
    "status": "completed",
    "code": {"coding": [{"system": "urn:codoc:fhir:codesystem:Acte", "code": "ZZQX001"}]},
    "performedDateTime": "2024-03-05T10:30:00Z",
    "note": [{"text": "kept beside the row"}],
}
DATES = "date=ge2000-01-01&date=lt2100-01-01"


def answer(client: Any, path: str, headers: dict[str, str]) -> dict[str, Any]:
    """What a client sees of a search: status, the headers it uses, the body."""
    response = client.get(path, headers=headers)
    seen = {name: response.headers.get(name) for name in HEADERS}
    # a paging cursor is encrypted afresh each time (random IV): compared without its value
    body = CURSOR.sub(b"_cursor=...", response.content)
    if b"_cursor=" in response.content:
        seen.pop("content-length")
    return {"status": response.status_code, "headers": seen, "body": body}


@pytest.fixture
def both(make_client: Any, database_url: str, engine: Engine) -> dict[str, Any]:
    """The fast and the generic app (auth on) on the demo data, its last patient given a
    Procedure of its own, and who has Procedures."""
    fast = make_client(**AUTH_ENV)
    generic = make_client(**AUTH_ENV, CODOC_FAST_READ="false")
    settings = make_settings(database_url)
    load_demo(settings)
    with engine.connect() as conn:
        last = conn.scalar(
            select(dwh_patient.c.patient_num).order_by(dwh_patient.c.patient_num.desc())
        )
    created = fast.post(
        "/v4.3.0/Procedure",
        json={**PROCEDURE, "subject": {"reference": f"Patient/{last}"}},
        headers=bearer(hs256("system/*.*")),
    )
    assert created.status_code == 201, created.text
    query = select(dwh_data.c.thesaurus_code, dwh_data.c.patient_num)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
        patients = sorted(conn.scalars(select(dwh_patient.c.patient_num)))
    with_procedures = sorted(
        {patient for code, patient in rows if fact_resource_name(settings, code) == "Procedure"}
    )
    assert len(with_procedures) > 1
    return {"fast": fast, "generic": generic, "with": with_procedures, "patients": patients}


def searches(setup: dict[str, Any]) -> list[str]:
    """Plain searches (answered fast) on patients with and without Procedures."""
    patients = [*setup["patients"], 999999]  # and one with no Procedure at all
    found = []
    for patient in patients:
        found += [
            f"/v4.3.0/Procedure?subject=Patient/{patient}",
            f"/v4.3.0/procedure/?patient={patient}&{DATES}",
            f"/v4.3.0/Procedure?subject=Patient/{patient}&date=ge2100-01-01",
            f"/v4.3.0/Procedure?subject={patient}&_total=none&_count=50",
        ]
    return found


def handed_on(setup: dict[str, Any]) -> list[str]:
    """Searches the fast search leaves to the generic route."""
    patient = setup["with"][0]
    return [
        "/v4.3.0/Procedure?_count=1",  # more than one page: a next link
        f"/v4.3.0/Procedure?subject=Patient/{patient}&_pretty=true",
        f"/v4.3.0/Procedure?subject=Patient/{patient}&_sort=-date",
        f"/v4.3.0/Procedure?subject=Patient/{patient}&_include=Procedure:subject",
        f"/v4.3.0/Procedure?subject=Patient/{patient}&_summary=count",
        f"/v4.3.0/Procedure?subject=Patient/{patient}&code=ZZQX001",
        f"/v4.3.0/Procedure?subject=Patient/{patient}&date=notadate",  # 400
        f"/v4.3.0/Procedure?subject=Patient/{patient}&unknown=1",  # 400 (strict)
        f"/v4.3.0/Observation?subject=Patient/{patient}",  # several kinds
    ]


def callers(setup: dict[str, Any]) -> dict[str, dict[str, str]]:
    own, other = setup["with"][0], setup["with"][-1]
    return {
        "system": bearer(hs256("system/*.read")),
        "system, plain JSON": {**bearer(hs256("system/*.*")), "Accept": "application/json"},
        "first patient": bearer(hs256("patient/*.read", patient=str(own))),
        "another patient": bearer(hs256("patient/*.rs", patient=str(other))),
        "Patient scope only": bearer(hs256("system/Patient.read")),
        "no token": {},
    }


def test_fast_search_answers_what_the_generic_search_answers(both: dict[str, Any]) -> None:
    fast, generic = both["fast"], both["generic"]
    statuses = set()
    for caller, headers in callers(both).items():
        for path in [*searches(both), *handed_on(both)]:
            fast_answer = answer(fast, path, headers)
            assert fast_answer == answer(generic, path, headers), (caller, path)
            statuses.add(fast_answer["status"])
    searcher = fast.app.state.fast_searcher
    if fast.app.state.server.engine.dialect.name == "postgresql":
        assert searcher is not None and searcher.served > 0
        assert {200, 400, 401, 403} <= statuses
        # compiled once per shape, each shape then answering many patients' searches
        assert 0 < len(searcher.shapes) < searcher.served / 4
    else:
        assert searcher is None  # SQLite keeps the generic search
    assert generic.app.state.fast_searcher is None


def test_plain_searches_are_answered_fast(both: dict[str, Any]) -> None:
    """Each plain search is taken by the fast search, the others are not."""
    fast = both["fast"]
    searcher = fast.app.state.fast_searcher
    if searcher is None:
        pytest.skip("no fast search on SQLite")
    system = bearer(hs256("system/*.read"))
    for path in searches(both):
        before = searcher.served
        assert fast.get(path, headers=system).status_code == 200, path
        assert searcher.served == before + 1, path
    for path in handed_on(both):
        before = searcher.served
        fast.get(path, headers=system)
        assert searcher.served == before, path


def test_a_patient_token_finds_only_its_patient(both: dict[str, Any]) -> None:
    """Confined to its patient: its own Procedures, none of another's (total 0)."""
    fast, generic = both["fast"], both["generic"]
    own, other = both["with"][0], both["with"][-1]
    token = bearer(hs256("patient/Procedure.rs", patient=str(own)))
    mine = fast.get(f"/v4.3.0/Procedure?subject=Patient/{own}&{DATES}", headers=token).json()
    assert mine["total"] > 0
    assert {entry["resource"]["subject"]["reference"] for entry in mine["entry"]} == {
        f"Patient/{own}"
    }
    path = f"/v4.3.0/Procedure?subject=Patient/{other}"
    theirs = fast.get(path, headers=token)
    assert theirs.json()["total"] == 0 and "entry" not in theirs.json()
    assert theirs.content == generic.get(path, headers=token).content
