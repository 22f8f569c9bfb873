"""fhirpy's SyncFHIRClient, unmodified, against the server over HTTP."""

from __future__ import annotations

import pytest
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import MultipleResourcesFound, OperationOutcome, ResourceNotFound
from sqlalchemy import Engine, func, select

from codoc_fhir.warehouse.schema import dwh_data, dwh_patient
from tests.clients.payloads import CCAM, patient_body, procedure_body


@pytest.fixture
def fhir(base_url: str) -> SyncFHIRClient:
    return SyncFHIRClient(base_url)


def test_create_read_update_patch_delete_patient(fhir: SyncFHIRClient, engine: Engine) -> None:
    patient = fhir.resource("Patient", **patient_body())
    patient.save()
    assert patient.id == "1"
    assert patient["meta"]["versionId"] == "1"

    fetched = fhir.reference("Patient", patient.id).to_resource()
    assert fetched["name"][0]["family"] == "Smith"
    assert fetched["birthDate"] == "1980-05-15"

    fetched["gender"] = "male"
    fetched.save()  # PUT of what was read, edited
    assert fetched["meta"]["versionId"] == "2"
    assert fhir.reference("Patient", "1").to_resource()["gender"] == "male"

    fetched["telecom"] = [{"system": "phone", "value": "+33 1 23 45 67 89"}]
    fetched.save(fields=["telecom"])  # PATCH of that field only
    again = fhir.reference("Patient", "1").to_resource()
    assert again["telecom"] == [{"system": "phone", "value": "+33 1 23 45 67 89"}]
    assert again["gender"] == "male"
    assert again["meta"]["versionId"] == "3"

    fetched.delete()
    with pytest.raises(ResourceNotFound):
        fhir.reference("Patient", "1").to_resource()
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(dwh_patient)) == 0


def test_search_patient_by_identifier_and_family(fhir: SyncFHIRClient) -> None:
    fhir.resource("Patient", **patient_body("IPP1")).save()
    other = patient_body("IPP2")
    other["name"] = [{"family": "Durand", "given": ["Anne"]}]
    fhir.resource("Patient", **other).save()

    found = fhir.resources("Patient").search(identifier="HIS|IPP2").fetch()
    assert [patient.id for patient in found] == ["2"]
    assert fhir.resources("Patient").search(family="smi").get().id == "1"
    assert fhir.resources("Patient").search(identifier="HIS|IPP3").fetch() == []


def test_procedures_searched_and_paged_to_the_end(fhir: SyncFHIRClient) -> None:
    patient = fhir.resource("Patient", **patient_body())
    patient.save()
    for day in range(1, 26):
        fhir.resource("Procedure", **procedure_body(patient.id, day)).save()

    every = fhir.resources("Procedure").search(subject=f"Patient/{patient.id}").limit(10)
    found = every.fetch_all()  # follows the next links: three pages
    assert sorted(int(procedure.id) for procedure in found) == list(range(1, 26))
    assert {procedure["subject"]["reference"] for procedure in found} == {"Patient/1"}

    january_tenth_on = (
        fhir.resources("Procedure")
        .search(subject=f"Patient/{patient.id}")
        .search(date__ge="2024-01-10", date__lt="2024-01-20")
        .fetch_all()
    )
    assert len(january_tenth_on) == 10


def test_count_of_a_search(fhir: SyncFHIRClient) -> None:
    patient = fhir.resource("Patient", **patient_body())
    patient.save()
    for day in (1, 2, 3):
        fhir.resource("Procedure", **procedure_body(patient.id, day)).save()
    # fhirpy asks `_count=0&_totalMethod=count` and reads Bundle.total
    assert fhir.resources("Procedure").search(code=f"{CCAM}|DEQP003").count() == 3
    assert fhir.resources("Procedure").search(code=f"{CCAM}|ZZZZ999").count() == 0


def test_procedure_update_round_trips(fhir: SyncFHIRClient) -> None:
    patient = fhir.resource("Patient", **patient_body())
    patient.save()
    procedure = fhir.resource("Procedure", **procedure_body(patient.id))
    procedure.save()

    stored = fhir.reference("Procedure", procedure.id).to_resource()
    stored["performedDateTime"] = "2024-02-02T08:30:00Z"
    stored.save()
    assert stored["meta"]["versionId"] == "2"
    assert fhir.reference("Procedure", procedure.id).to_resource()["performedDateTime"] == (
        "2024-02-02T08:30:00Z"
    )


def test_errors_reach_the_client_as_operation_outcomes(
    fhir: SyncFHIRClient, engine: Engine
) -> None:
    with pytest.raises(OperationOutcome) as raised:
        fhir.resource("Procedure", **procedure_body("999")).save()
    assert "Patient with ID 999 does not exist" in str(raised.value)
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(dwh_data)) == 0
    with pytest.raises(ResourceNotFound):
        fhir.reference("Procedure", "42").to_resource()


def test_conditional_create_with_search_params(fhir: SyncFHIRClient, engine: Engine) -> None:
    first = fhir.resource("Patient", **patient_body("IPP7")).create(identifier="HIS|IPP7")
    assert first.id == "1"
    again = fhir.resource("Patient", **patient_body("IPP7")).create(identifier="HIS|IPP7")
    assert again.id == "1"
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(dwh_patient)) == 1
    fhir.resource("Patient", **patient_body("IPP8")).save()
    other = patient_body("IPP9")
    with pytest.raises(MultipleResourcesFound):
        fhir.resource("Patient", **other).create(family="Smith")  # two Smiths: 412


def test_conditional_update_and_patch_through_search_sets(fhir: SyncFHIRClient) -> None:
    body = fhir.resource("Patient", **patient_body("IPP5"))
    created, was_created = fhir.resources("Patient").search(identifier="HIS|IPP5").update(body)
    assert (created.id, was_created) == ("1", True)
    body["gender"] = "male"
    updated, was_created = fhir.resources("Patient").search(identifier="HIS|IPP5").update(body)
    assert (updated.id, was_created) == ("1", False)
    assert updated["meta"]["versionId"] == "2"
    patched = fhir.resources("Patient").search(identifier="HIS|IPP5").patch(gender="other")
    assert patched["gender"] == "other"
    fhir.resource("Patient", **patient_body("IPP6")).save()
    with pytest.raises(MultipleResourcesFound):
        fhir.resources("Patient").search(family="Smith").update(body)
    _, status = fhir.resources("Patient").search(identifier="HIS|IPP6").delete()
    assert status == 204
    assert fhir.resources("Patient").search(identifier="HIS|IPP6").fetch() == []


def test_chained_and_reverse_chained_search(fhir: SyncFHIRClient) -> None:
    first = fhir.resource("Patient", **patient_body("IPP1"))
    first.save()
    other = patient_body("IPP2")
    other["name"] = [{"family": "Durand", "given": ["Anne"]}]
    second = fhir.resource("Patient", **other)
    second.save()
    fhir.resource("Procedure", **procedure_body(second.id)).save()
    chained = fhir.resources("Procedure").search(subject__Patient__identifier="HIS|IPP2").fetch()
    assert [item["subject"]["reference"] for item in chained] == ["Patient/2"]
    by_name = fhir.resources("Procedure").search(subject__family="Smith").fetch()
    assert by_name == []
    having = fhir.resources("Patient").has("Procedure", "subject", code=f"{CCAM}|DEQP003").fetch()
    assert [patient.id for patient in having] == ["2"]


def test_history_through_the_client(fhir: SyncFHIRClient) -> None:
    patient = fhir.resource("Patient", **patient_body("IPP3"))
    patient.save()
    patient["gender"] = "male"
    patient.save()
    patient.delete()
    history = fhir.execute("Patient/1/_history", method="get")
    assert history["type"] == "history"
    methods = [entry["request"]["method"] for entry in history["entry"]]
    assert methods == ["DELETE", "PUT", "POST"]
    first = fhir.execute("Patient/1/_history/1", method="get")
    assert first["gender"] == "female"
