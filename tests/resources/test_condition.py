"""Condition: a dwh_data fact of the condition thesaurus (CONTRACT section 9,
docs/resources/condition.md), on both path forms and both backends."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, update

from codoc_fhir.warehouse.db import write_transaction
from codoc_fhir.warehouse.schema import dwh_data, dwh_thesaurus_data
from tests.factories import count_rows, make_patient, make_stay, seed_procedure_context

BASE = "/v4.3.0"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CIM10 = "urn:codoc:fhir:codesystem:CIM10"
SNOMED = "http://snomed.info/sct"

CONDITION = {
    "resourceType": "Condition",
    "identifier": [{"use": "usual", "value": "COND-1"}],
    "clinicalStatus": {"coding": [{"system": CLINICAL, "code": "active"}]},
    "code": {"coding": [{"code": "I10", "display": "Essential hypertension"}]},
    "subject": {"reference": "Patient/1"},
    "encounter": {"reference": "Encounter/1"},
    "onsetDateTime": "2020-01-10T08:00:00Z",
    "recordedDate": "2020-02-01T09:30:00Z",
}

# What Synthea writes (its references made local: Patient/1 and its stay Encounter/1).
SYNTHEA = {
    "resourceType": "Condition",
    "id": "5c3e9f0a-7b1d-4c55-9a51-2f1e8b2d7c11",
    "meta": {"profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-condition"]},
    "clinicalStatus": {"coding": [{"system": CLINICAL, "code": "resolved"}]},
    "verificationStatus": {"coding": [{"system": VERIFICATION, "code": "confirmed"}]},
    "category": [
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                    "code": "encounter-diagnosis",
                    "display": "Encounter Diagnosis",
                }
            ]
        }
    ],
    "code": {
        "coding": [
            {"system": SNOMED, "code": "444814009", "display": "Viral sinusitis (disorder)"}
        ],
        "text": "Viral sinusitis (disorder)",
    },
    "subject": {"reference": "Patient/1"},
    "encounter": {"reference": "Encounter/1"},
    "onsetDateTime": "2015-06-13T05:10:14-04:00",
    "abatementDateTime": "2015-06-27T05:10:14-04:00",
    "recordedDate": "2015-06-13T05:10:14-04:00",
}


@pytest.fixture
def context(engine):
    return seed_procedure_context(engine)


def stored_row(engine, num: int = 1):
    with engine.connect() as conn:
        return conn.execute(select(dwh_data).where(dwh_data.c.data_num == num)).mappings().one()


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def as_utc(value: datetime) -> datetime:
    """SQLite answers naive datetimes (stored in UTC)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def without(*names: str) -> dict:
    body = copy.deepcopy(CONDITION)
    for name in names:
        body.pop(name)
    return body


def create(client, body: dict, path: str = "/condition/") -> dict:
    response = client.post(f"{BASE}{path}", json=body)
    assert response.status_code == 201, response.text
    return response.json()


# --- create and read -----------------------------------------------------------------------


def test_create_on_the_codoc_path_answers_the_mapped_condition(client, context, engine):
    response = client.post(f"{BASE}/condition/", json=CONDITION)
    assert response.status_code == 201, response.text
    assert response.headers["location"].endswith("/v4.3.0/Condition/1")
    assert response.headers["etag"] == 'W/"1"'
    created = response.json()
    assert created["id"] == "1"
    assert created["identifier"] == [
        {"use": "official", "value": "1"},
        {"use": "usual", "value": "COND-1"},
    ]
    assert created["clinicalStatus"] == {"coding": [{"system": CLINICAL, "code": "active"}]}
    assert created["code"] == {
        "coding": [{"system": CIM10, "code": "I10", "display": "Essential hypertension"}]
    }
    assert created["subject"] == {"reference": "Patient/1"}
    assert created["encounter"] == {"reference": "Encounter/1"}
    assert created["onsetDateTime"] == "2020-01-10T08:00:00Z"
    assert created["recordedDate"] == "2020-02-01T09:30:00Z"
    assert "abatementDateTime" not in created
    row = stored_row(engine)
    assert row["thesaurus_code"] == "CIM10"
    assert (row["patient_num"], row["stay_num"], row["data_status"]) == (1, 1, "active")
    assert as_utc(row["start_date"]) == utc(2020, 1, 10, 8)
    assert as_utc(row["document_date"]) == utc(2020, 2, 1, 9, 30)
    assert row["end_date"] is None
    assert row["id_data_source"] == "COND-1"


def test_create_on_the_standard_path_and_read_on_both(client, context):
    created = create(client, CONDITION, "/Condition")
    assert created["id"] == "1"
    for path in ("/condition/1/", "/condition/1", "/Condition/1"):
        response = client.get(f"{BASE}{path}")
        assert response.status_code == 200, path
        assert response.json()["code"]["coding"][0]["code"] == "I10"
        assert response.headers["etag"] == 'W/"1"'


def test_unknown_code_is_created_in_the_condition_thesaurus_once(client, context, engine):
    create(client, CONDITION)
    create(client, CONDITION)
    with engine.connect() as conn:
        concepts = conn.execute(
            select(dwh_thesaurus_data.c.thesaurus_code, dwh_thesaurus_data.c.concept_str)
        ).all()
    assert [tuple(concept) for concept in concepts] == [("CIM10", "Essential hypertension")]
    assert count_rows(engine, dwh_data) == 2


def test_the_thesaurus_is_the_one_the_setting_names(make_client, engine):
    seed_procedure_context(engine)
    icd = make_client(THESAURUS_CODE_CONDITION="ICD10")
    created = icd.post(f"{BASE}/Condition", json=CONDITION).json()
    assert created["code"]["coding"][0]["system"] == "urn:codoc:fhir:codesystem:ICD10"
    assert stored_row(engine)["thesaurus_code"] == "ICD10"
    assert make_client().get(f"{BASE}/Condition/1").status_code == 404


def test_strict_codes_refuse_a_code_the_thesaurus_lacks(make_client, engine):
    seed_procedure_context(engine)
    response = make_client(CODOC_STRICT_CODES="true").post(f"{BASE}/Condition", json=CONDITION)
    assert response.status_code == 400
    assert "CIM10" in response.json()["issue"][0]["diagnostics"]
    assert count_rows(engine, dwh_data) == 0


def test_a_procedure_row_is_404_on_the_condition_paths(client, context):
    procedure = {
        "resourceType": "Procedure",
        "status": "completed",
        "code": {"coding": [{"code": "COLO001"}]},
        "subject": {"reference": "Patient/1"},
        "performedDateTime": "2024-01-15T14:00:00Z",
    }
    assert client.post(f"{BASE}/procedure/", json=procedure).status_code == 201
    assert client.get(f"{BASE}/condition/1/").status_code == 404
    assert client.get(f"{BASE}/Condition/1").status_code == 404
    assert client.get(f"{BASE}/Condition").json()["total"] == 0


# --- the dates -----------------------------------------------------------------------------


def test_onset_period_and_abatement_period_fill_start_and_end(client, context, engine):
    body = without("onsetDateTime", "recordedDate")
    body["onsetPeriod"] = {"start": "2020-01-10T08:00:00Z"}
    body["abatementPeriod"] = {"end": "2020-03-01T00:00:00Z"}
    body["clinicalStatus"] = {"coding": [{"system": CLINICAL, "code": "resolved"}]}
    created = create(client, body)
    assert created["onsetPeriod"] == {"start": "2020-01-10T08:00:00Z"}
    assert created["abatementPeriod"] == {"end": "2020-03-01T00:00:00Z"}
    assert "onsetDateTime" not in created and "abatementDateTime" not in created
    assert "recordedDate" not in created
    row = stored_row(engine)
    assert as_utc(row["start_date"]) == utc(2020, 1, 10, 8)
    assert as_utc(row["document_date"]) == utc(2020, 1, 10, 8)  # recorded at its onset
    assert as_utc(row["end_date"]) == utc(2020, 3, 1)


def test_an_onset_that_is_not_a_date_starts_at_the_recorded_date(client, context, engine):
    body = without("onsetDateTime")
    body["onsetAge"] = {"value": 52, "unit": "a", "system": "http://unitsofmeasure.org"}
    created = create(client, body)
    assert created["recordedDate"] == "2020-02-01T09:30:00Z"
    assert "onsetDateTime" not in created and "onsetPeriod" not in created
    row = stored_row(engine)
    assert as_utc(row["start_date"]) == utc(2020, 2, 1, 9, 30)
    assert as_utc(row["document_date"]) == utc(2020, 2, 1, 9, 30)


def test_dates_without_a_time_come_back_at_their_precision(client, context, engine):
    body = without("recordedDate")
    body.update(onsetDateTime="2019", abatementDateTime="2019-07-14")
    body["clinicalStatus"] = {"coding": [{"system": CLINICAL, "code": "remission"}]}
    created = create(client, body)
    assert (created["onsetDateTime"], created["abatementDateTime"]) == ("2019", "2019-07-14")
    row = stored_row(engine)
    assert as_utc(row["start_date"]) == utc(2019, 1, 1)
    assert as_utc(row["end_date"]) == utc(2019, 7, 14)


def test_offsets_are_answered_in_utc(client, context):
    body = dict(CONDITION, onsetDateTime="2020-01-10T10:00:00+02:00")
    assert create(client, body)["onsetDateTime"] == "2020-01-10T08:00:00Z"


# --- the Synthea-style Condition ----------------------------------------------------------


def test_synthea_condition_is_stored_in_the_columns(client, context, engine):
    created = create(client, SYNTHEA, "/Condition")
    assert created["id"] == "1"  # the id sent is the sender's, not ours
    assert created["clinicalStatus"] == SYNTHEA["clinicalStatus"]
    assert created["code"]["coding"][0] == {
        "system": CIM10,
        "code": "444814009",
        "display": "Viral sinusitis (disorder)",
    }
    assert created["subject"] == {"reference": "Patient/1"}
    assert created["encounter"] == {"reference": "Encounter/1"}
    assert created["onsetDateTime"] == "2015-06-13T09:10:14Z"
    assert created["abatementDateTime"] == "2015-06-27T09:10:14Z"
    assert created["recordedDate"] == "2015-06-13T09:10:14Z"
    row = stored_row(engine)
    assert (row["thesaurus_code"], row["data_status"], row["stay_num"]) == ("CIM10", "resolved", 1)
    assert as_utc(row["start_date"]) == utc(2015, 6, 13, 9, 10, 14)
    assert as_utc(row["end_date"]) == utc(2015, 6, 27, 9, 10, 14)
    assert as_utc(row["document_date"]) == utc(2015, 6, 13, 9, 10, 14)
    assert client.get(f"{BASE}/Condition?clinical-status=resolved").json()["total"] == 1


def test_synthea_condition_round_trips_unchanged(client, context):
    expected = copy.deepcopy(SYNTHEA)
    expected.pop("meta")
    expected["id"] = "1"
    expected["identifier"] = [{"use": "official", "value": "1"}]
    thesaurus = {"system": CIM10, "code": "444814009", "display": "Viral sinusitis (disorder)"}
    expected["code"]["coding"].insert(0, thesaurus)
    expected["onsetDateTime"] = expected["recordedDate"] = "2015-06-13T09:10:14Z"
    expected["abatementDateTime"] = "2015-06-27T09:10:14Z"
    create(client, SYNTHEA, "/Condition")
    read = client.get(f"{BASE}/Condition/1").json()
    read.pop("meta")
    assert read == expected


def test_elements_without_a_column_are_kept(client, context):
    extra = {
        "verificationStatus": {"coding": [{"system": VERIFICATION, "code": "provisional"}]},
        "category": [{"coding": [{"code": "problem-list-item"}]}],
        "severity": {"coding": [{"system": SNOMED, "code": "24484000", "display": "Severe"}]},
        "note": [{"text": "Discovered at the pre-operative visit"}],
        "evidence": [{"detail": [{"reference": "DocumentReference/77"}]}],
        "onsetAge": {"value": 52, "unit": "a", "system": "http://unitsofmeasure.org", "code": "a"},
    }
    body = {**without("onsetDateTime"), **extra}
    created = create(client, body)
    for name, value in extra.items():
        assert created[name] == value, name
        assert client.get(f"{BASE}/Condition/1").json()[name] == value, name


def test_what_a_mapped_element_holds_beyond_its_column_is_kept(client, context):
    status = {"coding": [{"system": CLINICAL, "code": "resolved", "display": "Resolved"}]}
    body = without("onsetDateTime")
    body.update(
        clinicalStatus={**status, "text": "Resolved"},
        onsetPeriod={"start": "2020-01-10T08:00:00Z", "end": "2020-01-12T08:00:00Z"},
        abatementPeriod={"start": "2020-02-01T00:00:00Z", "end": "2020-03-01T00:00:00Z"},
    )
    create(client, body)
    read = client.get(f"{BASE}/Condition/1").json()
    for name in ("clinicalStatus", "onsetPeriod", "abatementPeriod"):
        assert read[name] == body[name], name


def test_a_source_coding_is_answered_and_searched_after_the_thesaurus_coding(client, context):
    create(client, SYNTHEA)
    code = client.get(f"{BASE}/Condition/1").json()["code"]
    assert code["coding"][1] == SYNTHEA["code"]["coding"][0]
    assert code["text"] == "Viral sinusitis (disorder)"
    found = client.get(f"{BASE}/Condition?code={SNOMED}|444814009").json()
    assert found["total"] == 1


def test_a_movement_reference_is_answered_as_sent(client, context):
    add_movement(client)
    create(client, dict(CONDITION, encounter={"reference": "Encounter/movement-1"}))
    read = client.get(f"{BASE}/Condition/1").json()
    assert read["encounter"] == {"reference": "Encounter/movement-1"}


# --- update, patch, delete, history -------------------------------------------------------


def test_put_replaces_the_whole_condition(client, context, engine):
    create(client, CONDITION)
    replacement = without("encounter", "recordedDate", "identifier")
    replacement.update(
        clinicalStatus={"coding": [{"system": CLINICAL, "code": "resolved"}]},
        abatementDateTime="2021-04-01T00:00:00Z",
    )
    response = client.put(f"{BASE}/condition/1/", json=replacement)
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["meta"]["versionId"] == "2"
    assert updated["clinicalStatus"]["coding"][0]["code"] == "resolved"
    assert updated["abatementDateTime"] == "2021-04-01T00:00:00Z"
    assert "encounter" not in updated and "recordedDate" not in updated
    assert updated["identifier"] == [{"use": "official", "value": "1"}]
    row = stored_row(engine)
    assert (row["stay_num"], row["data_status"], row["id_data_source"]) == (None, "resolved", None)
    assert as_utc(row["document_date"]) == utc(2020, 1, 10, 8)


def test_get_then_put_round_trips(client, context):
    created = create(client, CONDITION)
    again = client.put(f"{BASE}/Condition/1", json=created).json()
    created.pop("meta")
    again.pop("meta")
    assert again == created


def test_patch_changes_only_the_given_fields(client, context, engine):
    create(client, CONDITION)
    changes = {
        "clinicalStatus": {"coding": [{"system": CLINICAL, "code": "inactive"}]},
        "abatementDateTime": "2020-06-01T00:00:00Z",
    }
    response = client.patch(f"{BASE}/condition/1/", json=changes)
    assert response.status_code == 200, response.text
    patched = response.json()
    assert patched["clinicalStatus"] == changes["clinicalStatus"]
    assert patched["abatementDateTime"] == "2020-06-01T00:00:00Z"
    assert patched["onsetDateTime"] == "2020-01-10T08:00:00Z"
    assert patched["code"]["coding"][0]["code"] == "I10"
    assert patched["meta"]["versionId"] == "2"
    assert stored_row(engine)["data_status"] == "inactive"


def test_json_patch(client, context, engine):
    create(client, CONDITION)
    response = client.patch(
        f"{BASE}/Condition/1",
        content=b'[{"op":"remove","path":"/encounter"},{"op":"remove","path":"/clinicalStatus"}]',
        headers={"content-type": "application/json-patch+json"},
    )
    assert response.status_code == 200, response.text
    assert "encounter" not in response.json() and "clinicalStatus" not in response.json()
    row = stored_row(engine)
    assert (row["stay_num"], row["data_status"]) == (None, None)


def test_delete_then_read_is_410_and_the_row_is_gone(client, context, engine):
    create(client, CONDITION)
    assert client.delete(f"{BASE}/condition/1/").status_code == 204
    gone = client.get(f"{BASE}/Condition/1")
    assert gone.status_code == 410
    assert gone.json()["issue"][0]["code"] == "deleted"
    assert count_rows(engine, dwh_data) == 0


def test_history_keeps_every_version(client, context):
    create(client, CONDITION)
    client.patch(f"{BASE}/Condition/1", json={"onsetDateTime": "2020-01-11T08:00:00Z"})
    assert client.delete(f"{BASE}/Condition/1").status_code == 204
    bundle = client.get(f"{BASE}/Condition/1/_history").json()
    assert bundle["type"] == "history"
    assert [entry["request"]["method"] for entry in bundle["entry"]] == ["DELETE", "PATCH", "POST"]
    assert [entry["resource"]["onsetDateTime"] for entry in bundle["entry"][1:]] == [
        "2020-01-11T08:00:00Z",
        "2020-01-10T08:00:00Z",
    ]
    first = client.get(f"{BASE}/condition/1/_history/1/")
    assert first.status_code == 200
    assert first.json()["onsetDateTime"] == "2020-01-10T08:00:00Z"
    assert client.get(f"{BASE}/Condition/_history").json()["total"] == 3


def test_sql_updates_of_the_columns_show_in_reads_and_searches(client, context, engine):
    create(client, CONDITION)
    with engine.begin() as conn:
        conn.execute(
            update(dwh_data)
            .where(dwh_data.c.data_num == 1)
            .values(data_status="resolved", end_date=utc(2020, 5, 1))
        )
    read = client.get(f"{BASE}/Condition/1").json()
    assert read["clinicalStatus"]["coding"][0]["code"] == "resolved"
    assert read["abatementDateTime"] == "2020-05-01T00:00:00Z"
    assert client.get(f"{BASE}/Condition?clinical-status=resolved").json()["total"] == 1


def test_a_row_loaded_by_sql_answers_the_default_date_forms(client, context, engine):
    create(client, CONDITION)  # the CIM10 thesaurus and its concept I10
    with write_transaction(engine) as conn:
        concept = conn.execute(select(dwh_thesaurus_data.c.thesaurus_data_num)).scalar_one()
        conn.execute(
            dwh_data.insert().values(
                patient_num=1,
                thesaurus_data_num=concept,
                thesaurus_code="CIM10",
                start_date=utc(2018, 3, 4, 10),
                document_date=utc(2018, 3, 5, 10),
                end_date=utc(2018, 4, 1),
                update_date=utc(2024, 1, 1),
                row_version=1,
            )
        )
    read = client.get(f"{BASE}/Condition/2").json()
    assert read["onsetDateTime"] == "2018-03-04T10:00:00Z"
    assert read["recordedDate"] == "2018-03-05T10:00:00Z"
    assert read["abatementDateTime"] == "2018-04-01T00:00:00Z"
    assert "clinicalStatus" not in read


# --- encounters ---------------------------------------------------------------------------


def add_movement(client) -> None:
    movement = {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"code": "IMP"},
        "subject": {"reference": "Patient/1"},
        "partOf": {"reference": "Encounter/1"},
        "period": {"start": "2024-01-10T09:00:00Z"},
    }
    response = client.post(f"{BASE}/Encounter", json=movement)
    assert response.status_code == 201, response.text
    assert response.json()["id"] == "movement-1"


def test_a_movement_reference_stores_the_movement_stay(client, context, engine):
    add_movement(client)
    create(client, dict(CONDITION, encounter={"reference": "Encounter/movement-1"}))
    assert stored_row(engine)["stay_num"] == 1
    found = client.get(f"{BASE}/Condition?encounter=Encounter/1").json()
    assert found["total"] == 1


def test_an_encounter_of_another_patient_is_refused(client, context, engine):
    other = make_patient(engine, lastname="Other", ipp="IPP-OTHER")
    make_stay(engine, patient_num=other)
    response = client.post(
        f"{BASE}/Condition", json=dict(CONDITION, encounter={"reference": "Encounter/2"})
    )
    assert response.status_code == 400
    assert "another patient" in response.json()["issue"][0]["diagnostics"]
    assert count_rows(engine, dwh_data) == 0


# --- what the warehouse needs, and bad input -----------------------------------------------


def _onset_age_only() -> dict:
    body = without("onsetDateTime", "recordedDate")
    body["onsetAge"] = {"value": 52, "unit": "a"}
    return body


@pytest.mark.parametrize(
    ("body", "code", "needle"),
    [
        (without("code"), "required", "code"),
        (without("subject"), "required", "subject"),
        (without("onsetDateTime", "recordedDate"), "required", "A date is required"),
        (_onset_age_only(), "required", "A date is required"),
        (dict(CONDITION, code={"coding": [{"display": "no code"}]}), "required", "code"),
        (dict(CONDITION, onsetDateTime="10/01/2020"), "invalid", "date"),
        (
            dict(CONDITION, clinicalStatus={"coding": [{"system": CLINICAL, "code": "cured"}]}),
            "invalid",
            "clinicalStatus",
        ),
        (
            dict(
                CONDITION,
                code={"coding": [{"system": "urn:codoc:fhir:codesystem:Acte", "code": "X"}]},
            ),
            "invalid",
            "urn:codoc:fhir:codesystem:CIM10",
        ),
        (
            dict(CONDITION, subject={"reference": "Patient/999"}),
            "not-found",
            "Patient with ID 999 does not exist",
        ),
        (dict(CONDITION, subject={"reference": "Group/1"}), "invalid", "Patient"),
        (
            dict(CONDITION, encounter={"reference": "Encounter/999"}),
            "not-found",
            "Stay with ID 999 does not exist",
        ),
        (
            dict(CONDITION, encounter={"reference": "Encounter/movement-9"}),
            "not-found",
            "Movement with ID 9 does not exist",
        ),
        (dict(CONDITION, resourceType="Procedure"), "invalid", "resourceType"),
    ],
)
def test_bad_input_is_a_400_outcome_and_stores_nothing(client, context, engine, body, code, needle):
    response = client.post(f"{BASE}/condition/", json=body)
    assert response.status_code == 400, response.text
    issue = response.json()["issue"][0]
    assert issue["code"] == code
    assert needle in issue["diagnostics"]
    assert count_rows(engine, dwh_data) == 0
    assert count_rows(engine, dwh_thesaurus_data) == 0


def test_a_missing_date_names_the_elements(client, context):
    response = client.post(f"{BASE}/Condition", json=without("onsetDateTime", "recordedDate"))
    assert response.json()["issue"][0]["expression"] == [
        "Condition.onsetDateTime",
        "Condition.recordedDate",
    ]


def test_a_failed_update_changes_nothing(client, context, engine):
    create(client, CONDITION)
    response = client.put(f"{BASE}/Condition/1", json=without("onsetDateTime", "recordedDate"))
    assert response.status_code == 400
    read = client.get(f"{BASE}/Condition/1").json()
    assert read["meta"]["versionId"] == "1"
    assert read["onsetDateTime"] == "2020-01-10T08:00:00Z"


# --- deleting what a Condition points at ----------------------------------------------------


def test_deleting_a_patient_or_stay_with_conditions_is_409(client, context, engine):
    create(client, CONDITION)
    patient = client.delete(f"{BASE}/Patient/1")
    assert patient.status_code == 409
    assert patient.json()["issue"][0]["code"] == "conflict"
    assert "1 Condition" in patient.json()["issue"][0]["diagnostics"]
    stay = client.delete(f"{BASE}/Encounter/1")
    assert stay.status_code == 409
    assert "1 Condition" in stay.json()["issue"][0]["diagnostics"]
    assert count_rows(engine, dwh_data) == 1
    assert client.delete(f"{BASE}/Condition/1").status_code == 204
    assert client.delete(f"{BASE}/Encounter/1").status_code == 204
    assert client.delete(f"{BASE}/Patient/1").status_code == 204


# --- search -------------------------------------------------------------------------------


@pytest.fixture
def three_conditions(client, context, engine):
    """1: Patient/1, stay 1, I10 active, onset 2020-01-10, recorded 2020-02-01;
    2: Patient/1, E11 resolved, onset 2021-05-05 (no recordedDate), abated 2021-06-01;
    3: Patient/2, I10, no status, onsetAge, recorded 2022-03-03."""
    make_patient(engine, lastname="Other", ipp="IPP-OTHER")
    create(client, CONDITION)
    second = without("encounter", "recordedDate", "identifier")
    second.update(
        code={"coding": [{"code": "E11", "display": "Type 2 diabetes"}]},
        clinicalStatus={"coding": [{"system": CLINICAL, "code": "resolved"}]},
        onsetDateTime="2021-05-05T10:00:00Z",
        abatementDateTime="2021-06-01T10:00:00Z",
    )
    create(client, second)
    third = without("encounter", "onsetDateTime", "identifier", "clinicalStatus")
    third.update(
        subject={"reference": "Patient/2"},
        onsetAge={"value": 40, "unit": "a"},
        recordedDate="2022-03-03T12:00:00Z",
    )
    create(client, third, "/Condition")


def _ids(client, query: str) -> list[str]:
    response = client.get(f"{BASE}/Condition?{query}")
    assert response.status_code == 200, response.text
    return sorted(entry["resource"]["id"] for entry in response.json().get("entry", []))


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("subject=Patient/1", ["1", "2"]),
        ("patient=2", ["3"]),
        ("code=I10", ["1", "3"]),
        (f"code={CIM10}|E11", ["2"]),
        ("code=http://example.org|I10", []),
        ("onset-date=2020", ["1"]),
        ("onset-date=ge2021-01-01", ["2", "3"]),  # 3 has no dated onset: its recordedDate
        ("onset-date=lt2021-05-05T10:00:00Z", ["1"]),
        ("recorded-date=2020-02-01", ["1"]),
        ("recorded-date=2021-05-05", ["2"]),  # no recordedDate: the onset
        ("recorded-date=2022-03", ["3"]),
        ("abatement-date=le2021-12-31", ["2"]),
        ("encounter=Encounter/1", ["1"]),
        ("clinical-status=active", ["1"]),
        (f"clinical-status={CLINICAL}|resolved", ["2"]),
        ("clinical-status=http://example.org|resolved", []),
        ("clinical-status:missing=true", ["3"]),
        ("clinical-status:not=active", ["2", "3"]),
        ("subject=Patient/1&clinical-status=resolved", ["2"]),
        ("_id=2", ["2"]),
        ("identifier=COND-1", ["1"]),
        ("_lastUpdated=ge2000-01-01", ["1", "2", "3"]),
    ],
)
def test_search_parameters(client, three_conditions, query, expected):
    assert _ids(client, query) == expected


def test_search_on_the_codoc_path_sorts_by_onset(client, three_conditions):
    bundle = client.get(f"{BASE}/condition/?_sort=-onset-date").json()
    assert bundle["total"] == 3
    assert [entry["resource"]["id"] for entry in bundle["entry"]] == ["3", "2", "1"]


def test_the_patient_compartment_holds_its_conditions(client, three_conditions):
    bundle = client.get(f"{BASE}/Patient/1/Condition").json()
    assert sorted(entry["resource"]["id"] for entry in bundle["entry"]) == ["1", "2"]
    everything = client.get(f"{BASE}/Patient/2/$everything").json()
    types = {entry["resource"]["resourceType"] for entry in everything["entry"]}
    assert "Condition" in types


def test_unknown_search_parameter_is_400(client, three_conditions):
    response = client.get(f"{BASE}/Condition?severity=severe")
    assert response.status_code == 400


def test_the_capability_statement_lists_condition(client):
    statement = client.get(f"{BASE}/metadata").json()
    condition = next(
        item for item in statement["rest"][0]["resource"] if item["type"] == "Condition"
    )
    names = {param["name"] for param in condition["searchParam"]}
    wanted = {"subject", "patient", "code", "onset-date", "recorded-date", "encounter"}
    assert wanted | {"clinical-status", "identifier"} <= names
    interactions = {item["code"] for item in condition["interaction"]}
    assert {"read", "create", "update", "patch", "delete", "search-type"} <= interactions


def test_include_chain_validate_and_conditional_create(client, three_conditions):
    included = client.get(f"{BASE}/Condition?_id=1&_include=Condition:subject").json()
    modes = sorted(entry["search"]["mode"] for entry in included["entry"])
    assert modes == ["include", "match"]
    chained = client.get(f"{BASE}/Condition?subject:Patient.identifier=IPP-OTHER").json()
    assert [entry["resource"]["id"] for entry in chained["entry"]] == ["3"]
    valid = client.post(f"{BASE}/Condition/$validate", json=CONDITION)
    assert valid.status_code == 200
    invalid = client.post(f"{BASE}/Condition/$validate", json=without("code"))
    assert invalid.status_code == 400
    again = client.post(
        f"{BASE}/Condition", json=CONDITION, headers={"If-None-Exist": "identifier=COND-1"}
    )
    assert again.status_code == 200
    assert again.json()["id"] == "1"
    assert client.get(f"{BASE}/Condition").json()["total"] == 3
