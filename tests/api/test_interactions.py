"""The interaction layer called directly, without HTTP (interactions/).

REST routes and Bundle entries call these same functions: a Bundle entry with a `Joined`
database (its Bundle's open transaction), a route with one of its own. What a caller may
see is decided once, by its Caller: a patient-scoped caller never receives another
patient's row, whether by read, search, `_include` or a Bundle entry's GET.
"""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from codoc_fhir.api.auth import Principal, parse_scopes
from codoc_fhir.config import Settings
from codoc_fhir.fhir.errors import Forbidden, NotFound
from codoc_fhir.interactions import crud
from codoc_fhir.interactions.caller import Caller
from codoc_fhir.interactions.database import Engined, Joined
from codoc_fhir.interactions.search import search
from codoc_fhir.resources.registry import Address, Registry, build_registry
from codoc_fhir.warehouse.db import write_transaction
from codoc_fhir.warehouse.schema import dwh_patient
from tests.conftest import empty_tables, make_settings
from tests.factories import count_rows, make_patient, seed_procedure_context

BASE = "http://testserver/v4.3.0"


def procedure_for(patient: int) -> dict:
    return {
        "resourceType": "Procedure",
        "status": "completed",
        "code": {"coding": [{"code": "COLO001", "display": "Colonoscopy"}]},
        "subject": {"reference": f"Patient/{patient}"},
        "performedDateTime": "2024-01-15T14:00:00Z",
    }


@pytest.fixture(scope="module")
def registry(database_url: str) -> Registry:
    settings: Settings = make_settings(database_url)
    return build_registry(settings, cursor_secret="interactions-test")


@pytest.fixture
def db(engine: Engine, registry: Registry) -> Engined:
    """Patients 1 and 2, each with one Procedure (created by the system caller)."""
    empty_tables(engine)
    seed_procedure_context(engine)
    make_patient(engine, lastname="Other", firstname="Bob", ipp="IPP-OTHER")
    database = Engined(engine, registry)
    for patient in (1, 2):
        _, status = crud.create(
            database, SYSTEM, type_address(database, "Procedure"), procedure_for(patient)
        )
        assert status == 201
    return database


SYSTEM = Caller.system(BASE)


def patient_caller(patient: int, scope: str = "patient/*.read") -> Caller:
    principal = Principal(f"patient-{patient}", parse_scopes(scope), str(patient))
    return Caller(principal, BASE)


def type_address(db: Engined, name: str, key: str | None = None) -> Address:
    return db.registry.address(name if key is None else f"{name}/{key}")


def procedure_ids(db: Engined, caller: Caller, query: list[tuple[str, str]]) -> dict[str, set]:
    bundle = search(db, caller, type_address(db, "Procedure"), query, self_url=f"{BASE}/Procedure")
    found: dict[str, set] = {}
    for entry in bundle.get("entry") or []:
        resource = entry["resource"]
        found.setdefault(resource["resourceType"], set()).add(resource["id"])
    return found


def test_a_patient_scoped_caller_cannot_read_another_patients_row(db):
    mine = crud.read(db, patient_caller(1), type_address(db, "Procedure", "1"))
    assert mine["subject"]["reference"] == "Patient/1"
    with pytest.raises(NotFound):
        crud.read(db, patient_caller(1), type_address(db, "Procedure", "2"))
    with pytest.raises(NotFound):
        crud.read(db, patient_caller(1), type_address(db, "Patient", "2"))


def test_the_system_caller_reads_every_row(db):
    for key in ("1", "2"):
        assert crud.read(db, SYSTEM, type_address(db, "Procedure", key))["id"] == key
    assert procedure_ids(db, SYSTEM, [])["Procedure"] == {"1", "2"}


def test_a_patient_scoped_search_and_include_keep_to_its_patient(db):
    assert procedure_ids(db, patient_caller(1), []) == {"Procedure": {"1"}}
    everything = procedure_ids(db, SYSTEM, [("_include", "Procedure:subject")])
    assert everything["Patient"] == {"1", "2"}
    included = procedure_ids(db, patient_caller(1), [("_include", "Procedure:subject")])
    assert included == {"Procedure": {"1"}, "Patient": {"1"}}


def test_an_include_needs_the_scope_of_the_included_type(db):
    caller = patient_caller(1, "patient/Procedure.read")
    assert procedure_ids(db, caller, [("_include", "Procedure:subject")]) == {"Procedure": {"1"}}
    with pytest.raises(Forbidden):
        crud.read(db, caller, type_address(db, "Patient", "1"))


def test_a_bundle_get_in_a_joined_transaction_keeps_to_the_patient(db, engine):
    with write_transaction(engine) as conn:
        joined = Joined(conn, db.registry)
        assert crud.read(joined, patient_caller(1), type_address(db, "Procedure", "1"))["id"] == "1"
        with pytest.raises(NotFound):
            crud.read(joined, patient_caller(1), type_address(db, "Procedure", "2"))
        assert crud.read(joined, SYSTEM, type_address(db, "Procedure", "2"))["id"] == "2"


def test_a_patient_scoped_caller_cannot_create_for_another_patient(db):
    writer = patient_caller(1, "patient/*.*")
    with pytest.raises(Forbidden):
        crud.create(db, writer, type_address(db, "Procedure"), procedure_for(2))
    created, status = crud.create(db, writer, type_address(db, "Procedure"), procedure_for(1))
    assert status == 201 and created["subject"]["reference"] == "Patient/1"


def test_create_then_read_round_trip(db):
    created, status = crud.create(db, SYSTEM, type_address(db, "Procedure"), procedure_for(2))
    assert status == 201
    read = crud.read(db, SYSTEM, type_address(db, "Procedure", created["id"]))
    assert read == created
    again, status = crud.create(
        db,
        SYSTEM,
        type_address(db, "Patient"),
        new_patient("New"),
    )
    assert status == 201
    assert (
        crud.read(db, SYSTEM, type_address(db, "Patient", again["id"]))["name"][0]["family"]
        == "New"
    )


def new_patient(family: str) -> dict:
    return {
        "resourceType": "Patient",
        "identifier": [{"use": "usual", "system": "HIS", "value": f"IPP-{family}"}],
        "name": [{"family": family, "given": ["Paul"]}],
        "gender": "male",
        "birthDate": "1970-02-03",
    }


class RolledBack(Exception):
    """Ends the test's transaction without committing it."""


def test_a_joined_create_rolled_back_with_its_transaction_leaves_no_row(db, engine):
    patients = count_rows(engine, dwh_patient)
    body = new_patient("Rolled")
    with pytest.raises(RolledBack), write_transaction(engine) as conn:
        joined = Joined(conn, db.registry)
        created, status = crud.create(joined, SYSTEM, type_address(db, "Patient"), body)
        assert status == 201
        assert crud.read(joined, SYSTEM, type_address(db, "Patient", created["id"]))
        raise RolledBack
    assert count_rows(engine, dwh_patient) == patients
    with pytest.raises(NotFound):
        crud.read(db, SYSTEM, type_address(db, "Patient", created["id"]))
