"""The fast read (api/fast_read.py) answers exactly what the generic read route answers.

Two apps on the same database, one with the fast read (the default on PostgreSQL) and one
with CODOC_FAST_READ=false, are asked the same reads by the same callers: status, body and
the headers a client uses must be identical, whichever path answered. On SQLite there is
no fast read at all.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, select

from codoc_fhir.demo import load_demo
from codoc_fhir.resources.concepts import fact_resource_name
from codoc_fhir.warehouse.schema import dwh_data, dwh_patient
from tests.conftest import make_settings
from tests.security.tokens import AUTH_ENV, bearer, hs256

HEADERS = ("content-type", "etag", "last-modified", "content-length", "www-authenticate")
KEPT_PROCEDURE = {
    "resourceType": "Procedure",
    "status": "completed",
    "identifier": [{"system": "urn:example:acts", "value": "ACT-77"}],
    "code": {"coding": [{"system": "urn:codoc:fhir:codesystem:Acte", "code": "ZZQX001"}]},
    "performedDateTime": "2024-03-05T10:30:00Z",
    "note": [{"text": "kept beside the row"}],
    "extension": [{"url": "urn:example:ext", "valueString": "kept too"}],
}


def answer(client: Any, path: str, headers: dict[str, str]) -> dict[str, Any]:
    """What a client sees of a read: status, the headers it uses, the body."""
    response = client.get(path, headers=headers)
    seen = {name: response.headers.get(name) for name in HEADERS}
    return {"status": response.status_code, "headers": seen, "body": response.content}


def facts(engine: Engine, settings: Any) -> list[tuple[str, int, int]]:
    """(FHIR type, id, patient) of every dwh_data row."""
    query = select(dwh_data.c.thesaurus_code, dwh_data.c.data_num, dwh_data.c.patient_num)
    with engine.connect() as conn:
        rows = conn.execute(query.order_by(dwh_data.c.data_num)).all()
    return [(fact_resource_name(settings, code), num, patient) for code, num, patient in rows]


@pytest.fixture
def both(make_client: Any, database_url: str, engine: Engine) -> dict[str, Any]:
    """The fast and the generic app (auth on), the demo data and one Procedure with kept
    elements, one deleted Procedure."""
    fast = make_client(**AUTH_ENV)
    generic = make_client(**AUTH_ENV, CODOC_FAST_READ="false")
    settings = make_settings(database_url)
    load_demo(settings)
    system = bearer(hs256("system/*.*"))
    with engine.connect() as conn:  # the demo's second patient has no facts: give it one
        patient = conn.scalar(
            select(dwh_patient.c.patient_num).order_by(dwh_patient.c.patient_num.desc())
        )
    created = fast.post(
        "/v4.3.0/Procedure",
        json={**KEPT_PROCEDURE, "subject": {"reference": f"Patient/{patient}"}},
        headers=system,
    )
    assert created.status_code == 201, created.text
    deleted = fast.post(
        "/v4.3.0/Procedure",
        json={**KEPT_PROCEDURE, "subject": {"reference": f"Patient/{patient}"}, "note": None},
        headers=system,
    ).json()["id"]
    assert fast.delete(f"/v4.3.0/Procedure/{deleted}", headers=system).status_code == 204
    return {
        "fast": fast,
        "generic": generic,
        "facts": facts(engine, settings),
        "deleted": deleted,
    }


def callers(facts: list[tuple[str, int, int]]) -> dict[str, dict[str, str]]:
    patients = sorted({patient for _, _, patient in facts})
    other = patients[-1]
    return {
        "system": bearer(hs256("system/*.read")),
        "system, plain JSON": {**bearer(hs256("system/*.*")), "Accept": "application/json"},
        "first patient": bearer(hs256("patient/*.read", patient=str(patients[0]))),
        "another patient": bearer(hs256("patient/*.rs", patient=str(other))),
        "Patient scope only": bearer(hs256("system/Patient.read")),
        "no token": {},
    }


def paths(setup: dict[str, Any]) -> list[str]:
    found = [f"/v4.3.0/{fhir_type}/{num}" for fhir_type, num, _ in setup["facts"]]
    found += [f"/v4.3.0/{fhir_type.lower()}/{num}/" for fhir_type, num, _ in setup["facts"]]
    deleted = setup["deleted"]
    procedure = next(num for fhir_type, num, _ in setup["facts"] if fhir_type == "Procedure")
    return [
        *found,
        f"/v4.3.0/procedure/{procedure}",  # the Codoc path without its slash
        f"/v4.3.0/Procedure/{procedure:04d}",  # leading zeros: the same key
        f"/v4.3.0/Procedure/{procedure}//",  # no such route
        f"/v4.3.0/Observation/{procedure}",  # a fact of another kind: 404
        f"/v4.3.0/Procedure/{deleted}",  # 410 for everyone who may see it
        "/v4.3.0/Procedure/999999",  # 404
        "/v4.3.0/Observation/phenotype-1",  # a kind the fast read does not answer
        f"/v4.3.0/Procedure/{setup['facts'][0][1]}?_elements=code",  # a query string
    ]


def test_fast_read_answers_what_the_generic_read_answers(both: dict[str, Any]) -> None:
    fast, generic = both["fast"], both["generic"]
    statuses = set()
    for caller, headers in callers(both["facts"]).items():
        for path in paths(both):
            fast_answer = answer(fast, path, headers)
            assert fast_answer == answer(generic, path, headers), (caller, path)
            statuses.add(fast_answer["status"])
    reader = fast.app.state.fast_reader
    if fast.app.state.server.engine.dialect.name == "postgresql":
        assert reader is not None and reader.served > 0
        assert {200, 401, 403, 404, 410} <= statuses
    else:
        assert reader is None  # SQLite keeps the generic read
    assert generic.app.state.fast_reader is None


def test_fast_read_confines_a_patient_token_to_its_patient(both: dict[str, Any]) -> None:
    """A patient-scoped token reads its own patient's facts, and another's are 404."""
    fast = both["fast"]
    for fhir_type, num, patient in both["facts"]:
        own = bearer(hs256("patient/*.read", patient=str(patient)))
        stranger = bearer(hs256("patient/*.read", patient=str(patient + 1000)))
        assert fast.get(f"/v4.3.0/{fhir_type}/{num}", headers=own).status_code == 200
        assert fast.get(f"/v4.3.0/{fhir_type}/{num}", headers=stranger).status_code == 404


def test_kept_elements_are_answered_by_the_fast_read(both: dict[str, Any]) -> None:
    fast = both["fast"]
    system = bearer(hs256("system/*.read"))
    procedures = [num for fhir_type, num, _ in both["facts"] if fhir_type == "Procedure"]
    read = fast.get(f"/v4.3.0/Procedure/{procedures[-1]}", headers=system).json()
    assert read["note"] == [{"text": "kept beside the row"}]
    assert read["extension"][0]["valueString"] == "kept too"
    sent = [item for item in read["identifier"] if item["value"] == "ACT-77"]
    assert sent and sent[0]["system"] == "urn:example:acts"
