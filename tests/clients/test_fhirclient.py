"""SMART's fhirclient (client-py), unmodified, against the server over HTTP."""

from __future__ import annotations

import pytest
from fhirclient import client as smart_client
from fhirclient.models.patient import Patient
from fhirclient.models.procedure import Procedure
from fhirclient.server import FHIRServer
from requests import HTTPError
from sqlalchemy import Engine, func, select

from codoc_fhir.warehouse.schema import dwh_data, dwh_patient
from tests.clients.payloads import CCAM, patient_body, procedure_body


@pytest.fixture
def server(base_url: str) -> FHIRServer:
    smart = smart_client.FHIRClient(settings={"app_id": "codoc-tests", "api_base": base_url})
    return smart.server


def test_capability_statement_is_read_by_the_client(server: FHIRServer) -> None:
    server.get_capability()
    statement = server.capabilityStatement
    assert statement.fhirVersion == "4.3.0"
    types = {resource.type for resource in statement.rest[0].resource}
    assert {"Patient", "Procedure"} <= types


def test_create_read_update_delete_patient(server: FHIRServer, engine: Engine) -> None:
    created = Patient(patient_body()).create(server)
    assert created["id"] == "1"

    patient = Patient.read("1", server)
    assert patient.name[0].family == "Smith"
    assert patient.birthDate.isostring == "1980-05-15"
    assert patient.identifier[1].value == "IPP123456"

    patient.gender = "male"
    patient.update(server)  # PUT of what was read, edited
    updated = Patient.read("1", server)
    assert updated.gender == "male"
    assert updated.meta.versionId == "2"

    updated.delete(server)
    with pytest.raises(HTTPError) as gone:
        Patient.read("1", server)
    assert gone.value.response.status_code == 410  # deleted: the id is never reused
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(dwh_patient)) == 0


def test_search_patients_and_procedures(server: FHIRServer) -> None:
    Patient(patient_body("IPP1")).create(server)
    Patient(patient_body("IPP2")).create(server)
    for day in (3, 12, 25):
        Procedure(procedure_body("2", day)).create(server)

    found = Patient.where(struct={"identifier": "HIS|IPP2"}).perform_resources(server)
    assert [patient.id for patient in found] == ["2"]

    # fhirclient's "$gte" operators write the pre-R4 `date=>=...` form: R4 prefixes go as is.
    search = Procedure.where(struct={"subject": "Patient/2", "date": "ge2024-01-10"})
    procedures = search.perform_resources(server)
    assert sorted(procedure.performedDateTime.date.day for procedure in procedures) == [12, 25]
    assert {procedure.code.coding[0].system for procedure in procedures} == {CCAM}


def test_refused_create_raises_and_stores_nothing(server: FHIRServer, engine: Engine) -> None:
    with pytest.raises(HTTPError) as raised:
        Procedure(procedure_body("999")).create(server)
    answer = raised.value.response
    assert answer is not None and answer.status_code == 400
    assert "Patient with ID 999 does not exist" in answer.text
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(dwh_data)) == 0


def test_history_and_vread_through_the_client(server: FHIRServer) -> None:
    created = Patient(patient_body()).create(server)
    assert created["id"] == "1"
    patient = Patient.read("1", server)
    patient.gender = "male"
    patient.update(server)
    history = server.request_json("Patient/1/_history")
    assert [entry["response"]["etag"] for entry in history["entry"]] == ['W/"2"', 'W/"1"']
    first = Patient(server.request_json("Patient/1/_history/1"))
    assert first.gender == "female"
    assert first.meta.versionId == "1"
