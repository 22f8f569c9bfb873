"""Encounter (stays and movements): the documented payloads and the contract's rules."""

from __future__ import annotations

import copy

import pytest
from sqlalchemy import select

from codoc_fhir.warehouse import schema
from codoc_fhir.warehouse.db import write_transaction
from codoc_fhir.warehouse.schema import dwh_patient_mvt, dwh_patient_stay
from tests.factories import (
    NOW,
    count_rows,
    make_department,
    make_document,
    make_patient,
    make_site,
    make_unit,
)

BASE = "/v4.3.0"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"

# api/encounter.md "Create a Stay" (also getting-started/quickstart.md, section 6)
DOC_STAY = {
    "resourceType": "Encounter",
    "identifier": [{"use": "usual", "value": "ADM001"}],
    "status": "in-progress",
    "class": {"code": "IMP"},
    "subject": {"reference": "Patient/1"},
    "serviceProvider": {"reference": "Organization/department-1"},
    "period": {"start": "2024-01-15T08:00:00Z"},
    "hospitalization": {
        "admitSource": {"coding": [{"code": "H"}]},
        "dischargeDisposition": {"coding": [{"code": "01"}]},
    },
}

# api/encounter.md "Create a Movement"
DOC_MOVEMENT = {
    "resourceType": "Encounter",
    "identifier": [{"use": "usual", "value": "MOV001"}],
    "status": "in-progress",
    "class": {"code": "IMP"},
    "subject": {"reference": "Patient/1"},
    "serviceProvider": {"reference": "Organization/unit-1"},
    "period": {"start": "2025-01-20T10:00:00Z"},
    "partOf": {"reference": "Encounter/1"},
    "hospitalization": {
        "admitSource": {"coding": [{"code": "H"}]},
        "dischargeDisposition": {"coding": [{"code": "01"}]},
    },
}

# api/encounter.md "Close a Stay"
DOC_CLOSE = {
    "resourceType": "Encounter",
    "status": "finished",
    "subject": {"reference": "Patient/1"},
    "period": {"start": "2024-01-15T10:00:00Z", "end": "2024-01-20T16:00:00Z"},
}


def stored(engine, table, key, num):
    with engine.connect() as conn:
        return conn.execute(select(table).where(table.c[key] == num)).mappings().one()


@pytest.fixture
def context(engine):
    """site-1 -> department-1 (Cardiology) -> unit-1 (ICU), and Patient/1."""
    site = make_site(engine)
    department = make_department(engine, site_num=site)
    unit = make_unit(engine, department_num=department)
    patient = make_patient(engine)
    return {"site": site, "department": department, "unit": unit, "patient": patient}


def create_stay_and_movement(client) -> None:
    assert client.post(f"{BASE}/encounter/", json=DOC_STAY).status_code == 201
    assert client.post(f"{BASE}/encounter/", json=DOC_MOVEMENT).status_code == 201


# --- the documented payloads ---------------------------------------------------------------


def test_documented_stay_is_created_and_answered(client, context, engine):
    response = client.post(f"{BASE}/encounter/", json=DOC_STAY)
    assert response.status_code == 201, response.text
    stay = response.json()
    assert stay["id"] == "1"
    assert stay["identifier"] == [
        {"use": "official", "value": "1"},
        {"use": "usual", "value": "ADM001"},
    ]
    assert stay["status"] == "in-progress"
    assert stay["class"] == {"system": ACT_CODE, "code": "IMP", "display": "inpatient encounter"}
    assert stay["subject"] == {"reference": "Patient/1"}
    assert stay["period"] == {"start": "2024-01-15T08:00:00Z"}
    assert stay["serviceProvider"] == {
        "reference": "Organization/department-1",
        "display": "Cardiology Department",
    }
    assert stay["hospitalization"] == DOC_STAY["hospitalization"]
    assert "partOf" not in stay
    assert response.headers["location"].endswith("/v4.3.0/Encounter/1")
    row = stored(engine, dwh_patient_stay, "stay_num", 1)
    assert (row["encounter_num"], row["entry_mode"], row["out_mode"]) == ("ADM001", "H", "01")
    assert (row["type_dos"], row["class_code"], row["status"]) == (
        "Hospitalisation",
        "IMP",
        "in-progress",
    )
    assert (row["service_org_level"], row["service_org_num"]) == ("department", 1)


def test_documented_movement_is_created_with_part_of(client, context, engine):
    client.post(f"{BASE}/encounter/", json=DOC_STAY)
    response = client.post(f"{BASE}/encounter/", json=DOC_MOVEMENT)
    assert response.status_code == 201, response.text
    movement = response.json()
    assert movement["id"] == "movement-1"
    assert movement["identifier"][0] == {"use": "official", "value": "movement-1"}
    assert movement["identifier"][1] == {"use": "usual", "value": "MOV001"}
    assert movement["partOf"] == {"reference": "Encounter/1"}
    assert movement["serviceProvider"] == {
        "reference": "Organization/unit-1",
        "display": "Intensive Care Unit",
    }
    assert response.headers["location"].endswith("/v4.3.0/Encounter/movement-1")
    row = stored(engine, dwh_patient_mvt, "mvt_num", 1)
    assert (row["stay_num"], row["patient_num"], row["id_mvt_source"]) == (1, 1, "MOV001")
    assert (row["unit_num"], row["department_num"]) == (1, 1)
    assert (row["type_mvt"], row["mvt_order"]) == ("H", 1)
    assert (row["mvt_entry_mode"], row["mvt_exit_mode"]) == ("H", "01")
    assert count_rows(engine, dwh_patient_stay) == 1


def test_documented_close_a_stay_patch(client, context):
    create_stay_and_movement(client)
    response = client.patch(f"{BASE}/encounter/stay/1/", json=DOC_CLOSE)
    assert response.status_code == 200, response.text
    stay = response.json()
    assert stay["status"] == "finished"
    assert stay["period"] == {"start": "2024-01-15T10:00:00Z", "end": "2024-01-20T16:00:00Z"}
    assert stay["identifier"][1]["value"] == "ADM001"
    assert stay["meta"]["versionId"] == "2"


def test_encounter_page_patient_journey(client, context, engine):
    """api/encounter.md "Complete Use Case": Patient/123, site -> department -> unit."""
    with engine.begin() as conn:
        conn.execute(
            schema.dwh_patient.insert().values(
                patient_num=123, lastname="Doe", sex="F", update_date=NOW, row_version=1
            )
        )
    site_id, dept_id, unit_id = "site-1", "department-1", "unit-1"
    stay = client.post(
        f"{BASE}/encounter/",
        json={
            "resourceType": "Encounter",
            "identifier": [{"use": "usual", "value": "ADM001"}],
            "status": "in-progress",
            "class": {"code": "EMER"},
            "subject": {"reference": "Patient/123"},
            "serviceProvider": {"reference": f"Organization/{site_id}"},
            "period": {"start": "2024-01-15T08:00:00Z"},
        },
    ).json()
    stay_id = stay["id"]
    assert stay["class"]["code"] == "EMER"
    assert stay["serviceProvider"]["display"] == "Main site"
    for number, (org, start) in enumerate(
        ((dept_id, "2024-01-15T14:00:00Z"), (unit_id, "2024-01-17T02:00:00Z")), start=1
    ):
        response = client.post(
            f"{BASE}/encounter/",
            json={
                "resourceType": "Encounter",
                "identifier": [{"use": "usual", "value": f"MOV00{number}"}],
                "status": "in-progress",
                "class": {"code": "IMP"},
                "subject": {"reference": "Patient/123"},
                "serviceProvider": {"reference": f"Organization/{org}"},
                "partOf": {"reference": f"Encounter/{stay_id}"},
                "period": {"start": start},
            },
        )
        assert response.status_code == 201, response.text
        assert response.json()["partOf"] == {"reference": f"Encounter/{stay_id}"}
    discharge = client.patch(
        f"{BASE}/encounter/stay/{stay_id}/",
        json={
            "resourceType": "Encounter",
            "status": "finished",
            "period": {"start": "2024-01-15T08:00:00Z", "end": "2024-01-20T10:00:00Z"},
        },
    )
    assert discharge.status_code == 200, discharge.text
    assert discharge.json()["period"]["end"] == "2024-01-20T10:00:00Z"
    assert discharge.json()["subject"] == {"reference": "Patient/123"}
    assert count_rows(engine, dwh_patient_mvt) == 2


def test_patient_journey_guide(client, engine):
    """guides/patient-journey.md: care units 1, 2, 3 addressed as `Organization/N`."""
    department = make_department(engine)
    for code, name in (("URG", "Emergency"), ("CARDIO", "Cardiology"), ("ICU", "Intensive Care")):
        make_unit(engine, department_num=department, code=code, name=name)
    patient_id = str(make_patient(engine, lastname="Johnson"))
    emergency, cardio, icu = {"id": 1}, {"id": 2}, {"id": 3}

    def encounter(status, org, period, part_of=None):
        body = {
            "resourceType": "Encounter",
            "status": status,
            "class": {"code": "IMP"},
            "subject": {"reference": f"Patient/{patient_id}"},
            "serviceProvider": {"reference": f"Organization/{org['id']}"},
            "period": period,
        }
        if part_of:
            body["partOf"] = {"reference": f"Encounter/{part_of}"}
        return body

    stay = client.post(
        f"{BASE}/encounter/",
        json=encounter("in-progress", emergency, {"start": "2024-11-05T08:30:00Z"}),
    ).json()
    stay_id = stay["id"]
    assert stay["serviceProvider"] == {"reference": "Organization/unit-1", "display": "Emergency"}
    mvt1 = client.post(
        f"{BASE}/encounter/",
        json=encounter(
            "finished",
            emergency,
            {"start": "2024-11-05T08:30:00Z", "end": "2024-11-05T14:00:00Z"},
            stay_id,
        ),
    ).json()
    mvt2 = client.post(
        f"{BASE}/encounter/",
        json=encounter(
            "finished",
            cardio,
            {"start": "2024-11-05T14:00:00Z", "end": "2024-11-05T20:00:00Z"},
            stay_id,
        ),
    ).json()
    mvt3 = client.post(
        f"{BASE}/encounter/",
        json=encounter("in-progress", icu, {"start": "2024-11-05T20:00:00Z"}, stay_id),
    ).json()
    assert [mvt1["id"], mvt2["id"], mvt3["id"]] == ["movement-1", "movement-2", "movement-3"]
    assert mvt2["serviceProvider"]["display"] == "Cardiology"
    mvt3_id = mvt3["id"]
    closed = {"start": "2024-11-05T20:00:00Z", "end": "2024-11-07T10:00:00Z"}
    response = client.put(
        f"{BASE}/encounter/{mvt3_id}/", json=encounter("finished", icu, closed, stay_id)
    )
    assert response.status_code == 200, response.text
    assert response.json()["period"] == closed
    whole = {"start": "2024-11-05T08:30:00Z", "end": "2024-11-07T10:00:00Z"}
    response = client.put(f"{BASE}/encounter/{stay_id}/", json=encounter("finished", icu, whole))
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "finished"
    assert response.json()["period"] == whole
    with engine.connect() as conn:
        orders = conn.execute(
            select(dwh_patient_mvt.c.mvt_order).order_by(dwh_patient_mvt.c.mvt_num)
        ).scalars()
        assert list(orders) == [1, 2, 3]


# --- the three path forms ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stay_path", "movement_path"),
    [
        ("/encounter/1/", "/encounter/movement-1/"),
        ("/encounter/stay/1/", "/encounter/movement/1/"),
        ("/encounter/stay/1", "/encounter/movement/1"),
        ("/Encounter/1", "/Encounter/movement-1"),
    ],
)
def test_every_path_form_reads_updates_and_deletes(
    client, context, engine, stay_path, movement_path
):
    create_stay_and_movement(client)
    assert client.get(BASE + stay_path).json()["id"] == "1"
    assert client.get(BASE + movement_path).json()["id"] == "movement-1"
    patched = client.patch(BASE + movement_path, json={"status": "finished"})
    assert patched.status_code == 200, patched.text
    assert patched.json()["status"] == "finished"
    body = dict(DOC_MOVEMENT, status="cancelled")
    assert client.put(BASE + movement_path, json=body).json()["status"] == "cancelled"
    assert client.put(BASE + stay_path, json=DOC_STAY).json()["meta"]["versionId"] == "2"
    assert client.delete(BASE + movement_path).status_code == 204
    assert client.get(BASE + movement_path).status_code == 410
    assert client.delete(BASE + stay_path).status_code == 204
    assert client.get(BASE + stay_path).status_code == 410
    assert count_rows(engine, dwh_patient_stay) == count_rows(engine, dwh_patient_mvt) == 0


def test_sub_paths_do_not_mix_kinds(client, context):
    create_stay_and_movement(client)
    assert client.get(f"{BASE}/encounter/movement/2/").status_code == 404
    assert client.get(f"{BASE}/encounter/stay/movement-1/").status_code == 404
    assert client.get(f"{BASE}/encounter/movement-9/").status_code == 404


def test_get_then_put_round_trips(client, context):
    create_stay_and_movement(client)
    for path in ("/encounter/stay/1/", "/encounter/movement/1/"):
        read = client.get(BASE + path).json()
        again = client.put(BASE + path, json=read)
        assert again.status_code == 200, again.text
        read.pop("meta")
        answered = again.json()
        assert answered.pop("meta")["versionId"] == "2"
        assert answered == read


def test_json_patch_and_if_match(client, context):
    create_stay_and_movement(client)
    response = client.patch(
        f"{BASE}/encounter/movement/1/",
        content=b'[{"op":"replace","path":"/status","value":"finished"}]',
        headers={"content-type": "application/json-patch+json", "If-Match": 'W/"1"'},
    )
    assert response.status_code == 200, response.text
    stale = client.put(
        f"{BASE}/encounter/movement/1/", json=DOC_MOVEMENT, headers={"If-Match": 'W/"1"'}
    )
    assert stale.status_code == 412


def test_post_on_sub_paths_picks_the_kind(client, context):
    response = client.post(f"{BASE}/encounter/stay/", json=DOC_STAY)
    assert response.status_code == 201
    response = client.post(f"{BASE}/encounter/movement/", json=DOC_MOVEMENT)
    assert response.json()["id"] == "movement-1"
    without_part_of = {key: value for key, value in DOC_MOVEMENT.items() if key != "partOf"}
    response = client.post(f"{BASE}/encounter/movement/", json=without_part_of)
    assert response.status_code == 400
    assert response.json()["issue"][0]["code"] == "required"
    response = client.post(f"{BASE}/encounter/stay/", json=DOC_MOVEMENT)
    assert response.status_code == 400
    assert response.json()["issue"][0]["code"] == "invalid"


# --- bad input: 4xx OperationOutcome, nothing stored ---------------------------------------


def _without(body: dict, *path: str) -> dict:
    copied = copy.deepcopy(body)
    target = copied
    for part in path[:-1]:
        target = target[part]
    target.pop(path[-1])
    return copied


def _with(body: dict, **changes) -> dict:
    return dict(copy.deepcopy(body), **changes)


BAD_STAYS = [
    (_without(DOC_STAY, "status"), 400, "required", "status"),
    (_without(DOC_STAY, "class"), 400, "required", "class"),
    (_with(DOC_STAY, **{"class": {"system": ACT_CODE}}), 400, "required", "class.code"),
    (_without(DOC_STAY, "subject"), 400, "required", "subject"),
    (_with(DOC_STAY, period={"start": "15/01/2024"}), 400, "invalid", "Invalid date format"),
    (
        _with(DOC_STAY, period={"start": "2024-01-15T08:00:00"}),
        400,
        "invalid",
        "Invalid date format",
    ),
    (
        _with(DOC_STAY, period={"start": "2024-01-15T08:00:00Z", "end": "2024-01-14T08:00:00Z"}),
        400,
        "invalid",
        "period.end",
    ),
    (
        _with(DOC_STAY, subject={"reference": "Patient/999"}),
        400,
        "not-found",
        "Patient with ID 999 does not exist",
    ),
    (
        _with(DOC_STAY, subject={"reference": "Organization/site-1"}),
        400,
        "invalid",
        "subject",
    ),
    (
        _with(DOC_STAY, serviceProvider={"reference": "Organization/department-9"}),
        400,
        "not-found",
        "Department with ID 9 does not exist",
    ),
    (
        _with(DOC_STAY, serviceProvider={"reference": "Organization/42"}),
        400,
        "not-found",
        "Organization with ID 42 does not exist",
    ),
    (_with(DOC_STAY, resourceType="Patient"), 400, "invalid", "resourceType"),
]


@pytest.mark.parametrize(("body", "status", "code", "needle"), BAD_STAYS)
def test_bad_stay_is_refused_and_stores_nothing(
    client, context, engine, body, status, code, needle
):
    response = client.post(f"{BASE}/encounter/", json=body)
    assert response.status_code == status, response.text
    issue = response.json()["issue"][0]
    assert issue["code"] == code
    assert needle in issue["diagnostics"] + " ".join(issue.get("expression", []))
    assert count_rows(engine, dwh_patient_stay) == 0


BAD_MOVEMENTS = [
    (
        _with(DOC_MOVEMENT, partOf={"reference": "Encounter/999"}),
        400,
        "not-found",
        "Stay with ID 999 does not exist",
    ),
    (
        _with(DOC_MOVEMENT, partOf={"reference": "Encounter/movement-1"}),
        400,
        "invalid",
        "not a movement",
    ),
    (_with(DOC_MOVEMENT, partOf={"reference": "Patient/1"}), 400, "invalid", "partOf"),
    (_with(DOC_MOVEMENT, period={"start": "2024-01-14T08:00:00Z"}), 400, "invalid", "outside"),
    (_without(DOC_MOVEMENT, "subject"), 400, "required", "subject"),
    (_with(DOC_MOVEMENT, status="bogus"), 400, "invalid", "status"),
    (
        _with(DOC_MOVEMENT, serviceProvider={"reference": "Organization/unit-7"}),
        400,
        "not-found",
        "Unit with ID 7 does not exist",
    ),
]


@pytest.mark.parametrize(("body", "status", "code", "needle"), BAD_MOVEMENTS)
def test_bad_movement_is_refused_and_stores_nothing(
    client, context, engine, body, status, code, needle
):
    client.post(f"{BASE}/encounter/", json=DOC_STAY)
    client.post(f"{BASE}/encounter/", json=DOC_MOVEMENT)
    response = client.post(f"{BASE}/encounter/", json=body)
    assert response.status_code == status, response.text
    issue = response.json()["issue"][0]
    assert issue["code"] == code
    assert needle in issue["diagnostics"] + " ".join(issue.get("expression", []))
    assert count_rows(engine, dwh_patient_mvt) == 1


def test_movement_of_another_patients_stay_is_refused(client, context, engine):
    client.post(f"{BASE}/encounter/", json=DOC_STAY)
    make_patient(engine, lastname="Other", ipp="IPP-OTHER")
    body = _with(DOC_MOVEMENT, subject={"reference": "Patient/2"})
    response = client.post(f"{BASE}/encounter/", json=body)
    assert response.status_code == 400
    assert "another patient" in response.json()["issue"][0]["diagnostics"]
    assert count_rows(engine, dwh_patient_mvt) == 0


def test_movement_after_the_stay_closed_is_refused(client, context, engine):
    closed = _with(
        DOC_STAY, period={"start": "2024-01-15T08:00:00Z", "end": "2024-01-20T10:00:00Z"}
    )
    client.post(f"{BASE}/encounter/", json=closed)
    response = client.post(f"{BASE}/encounter/", json=DOC_MOVEMENT)
    assert response.status_code == 400
    assert "outside its stay 1" in response.json()["issue"][0]["diagnostics"]
    inside = _with(DOC_MOVEMENT, period={"start": "2024-01-16T10:00:00Z"})
    assert client.post(f"{BASE}/encounter/", json=inside).status_code == 201


def test_usual_identifier_is_unique_per_patient(client, context, engine):
    client.post(f"{BASE}/encounter/", json=DOC_STAY)
    again = client.post(f"{BASE}/encounter/", json=DOC_STAY)
    assert again.status_code == 409
    assert again.json()["issue"][0]["code"] == "duplicate"
    assert count_rows(engine, dwh_patient_stay) == 1
    make_patient(engine, lastname="Other", ipp="IPP-OTHER")
    other = _with(DOC_STAY, subject={"reference": "Patient/2"})
    assert client.post(f"{BASE}/encounter/", json=other).status_code == 201


def test_stay_cannot_gain_part_of_and_movement_cannot_lose_it(client, context, engine):
    create_stay_and_movement(client)
    response = client.put(
        f"{BASE}/encounter/stay/1/", json=_with(DOC_STAY, partOf={"reference": "Encounter/1"})
    )
    assert response.status_code == 400
    response = client.put(f"{BASE}/encounter/movement-1/", json=_without(DOC_MOVEMENT, "partOf"))
    assert response.status_code == 400
    assert response.json()["issue"][0]["code"] == "required"
    assert client.get(f"{BASE}/encounter/1/").json()["meta"]["versionId"] == "1"


def test_put_with_another_id_is_400(client, context):
    create_stay_and_movement(client)
    response = client.put(f"{BASE}/encounter/movement/1/", json=_with(DOC_MOVEMENT, id="1"))
    assert response.status_code == 400
    assert "differs" in response.json()["issue"][0]["diagnostics"]


# --- delete blocking -----------------------------------------------------------------------


def _fact(engine, thesaurus_code: str, stay: int) -> None:
    """A dwh_data row of `thesaurus_code` attached to `stay`."""
    with write_transaction(engine) as conn:
        if (
            conn.execute(
                select(schema.dwh_thesaurus).where(
                    schema.dwh_thesaurus.c.thesaurus_code == thesaurus_code
                )
            ).first()
            is None
        ):
            conn.execute(
                schema.dwh_thesaurus.insert().values(
                    thesaurus_code=thesaurus_code, label=thesaurus_code, row_version=1
                )
            )
        concept = conn.execute(
            schema.dwh_thesaurus_data.insert()
            .values(thesaurus_code=thesaurus_code, concept_code="C", concept_str="C", row_version=1)
            .returning(schema.dwh_thesaurus_data.c.thesaurus_data_num)
        ).scalar_one()
        conn.execute(
            schema.dwh_data.insert().values(
                patient_num=1,
                thesaurus_data_num=concept,
                thesaurus_code=thesaurus_code,
                document_date=NOW,
                start_date=NOW,
                stay_num=stay,
                row_version=1,
            )
        )


def test_delete_of_a_referenced_stay_is_409_naming_the_referrers(client, context, engine):
    create_stay_and_movement(client)
    _fact(engine, "Acte", 1)
    with write_transaction(engine) as conn:
        acte = conn.execute(select(schema.dwh_thesaurus_data.c.thesaurus_data_num)).scalar_one()
        conn.execute(
            schema.dwh_data.insert().values(
                patient_num=1,
                thesaurus_data_num=acte,
                thesaurus_code="Acte",
                document_date=NOW,
                start_date=NOW,
                stay_num=1,
                row_version=1,
            )
        )
        conn.execute(
            schema.dwh_patient_data.insert().values(
                patient_num=1, stay_num=1, code="29463-7", effective_date=NOW, row_version=1
            )
        )
    _fact(engine, "MyThesaurus", 1)
    make_document(engine, patient_num=1, stay_num=1)
    response = client.delete(f"{BASE}/encounter/stay/1/")
    assert response.status_code == 409
    issue = response.json()["issue"][0]
    assert issue["code"] == "conflict"
    diagnostics = issue["diagnostics"]
    assert diagnostics.startswith("Stay 1 is referenced by ")
    for part in ("1 Movement", "2 Procedure", "1 Data", "1 DocumentReference", "1 Observation"):
        assert part in diagnostics
    assert count_rows(engine, dwh_patient_stay) == 1


def test_stay_without_referrers_is_deleted_after_its_movement(client, context, engine):
    create_stay_and_movement(client)
    assert client.delete(f"{BASE}/encounter/1/").status_code == 409
    assert client.delete(f"{BASE}/encounter/movement-1/").status_code == 204
    assert client.delete(f"{BASE}/encounter/1/").status_code == 204
    assert count_rows(engine, dwh_patient_stay) == 0


def test_subject_of_a_referenced_stay_cannot_change(client, context, engine):
    create_stay_and_movement(client)
    make_patient(engine, lastname="Other", ipp="IPP-OTHER")
    response = client.put(
        f"{BASE}/encounter/stay/1/", json=_with(DOC_STAY, subject={"reference": "Patient/2"})
    )
    assert response.status_code == 409
    assert "1 Movement" in response.json()["issue"][0]["diagnostics"]
    assert stored(engine, dwh_patient_stay, "stay_num", 1)["patient_num"] == 1


def test_warehouse_rows_without_fhir_columns_are_answered(client, context, engine):
    """Stays loaded by ETL (no status/class columns) still answer valid Encounters."""
    with engine.begin() as conn:
        conn.execute(
            dwh_patient_stay.insert().values(
                patient_num=1,
                entry_date=NOW,
                out_date=NOW,
                type_dos="Urgence",
                entry_mode="Transfert  interne",
                row_version=1,
            )
        )
    stay = client.get(f"{BASE}/encounter/1/").json()
    assert stay["status"] == "finished"
    assert stay["class"]["code"] == "EMER"
    assert stay["hospitalization"]["admitSource"] == {"text": "Transfert  interne"}
