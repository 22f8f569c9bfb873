"""Organization: the documented payloads (api/organization.md, quickstart, the hierarchy and
patient-record guides), the hierarchy rules, counters and delete blocking."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from codoc_fhir.warehouse.schema import (
    dwh_data,
    dwh_document_author,
    dwh_patient,
    dwh_patient_mvt,
    dwh_patient_stay,
    dwh_thesaurus,
    dwh_thesaurus_data,
    dwh_thesaurus_department,
    dwh_thesaurus_site,
    dwh_thesaurus_unit,
    hospital_instance,
)
from tests.factories import count_rows, make_document, make_patient, make_stay

ORG = "/v4.3.0/organization/"
LEVEL_SYSTEM = "urn:codoc:fhir:organization-level"
HL7_SYSTEM = "http://terminology.hl7.org/CodeSystem/organization-type"
COUNTER = "urn:codoc:fhir:extension:"
ORG_TABLES = (hospital_instance, dwh_thesaurus_site, dwh_thesaurus_department, dwh_thesaurus_unit)

# api/organization.md and getting-started/quickstart.md, as documented
DOC_SITE = {
    "resourceType": "Organization",
    "identifier": [{"use": "usual", "value": "HOSP001"}],
    "name": "Paris University Hospital",
    "type": [{"coding": [{"code": "prov"}]}],
}
DOC_DEPARTMENT = {
    "resourceType": "Organization",
    "identifier": [{"use": "usual", "value": "CARD001"}],
    "name": "Cardiology Department",
    "type": [{"coding": [{"code": "dept"}]}],
    "partOf": {"reference": "organization/site-1"},
}
DOC_UNIT = {
    "resourceType": "Organization",
    "identifier": [{"use": "usual", "value": "ICU001"}],
    "name": "Intensive Care Unit",
    "type": [{"coding": [{"code": "team"}]}],
    "partOf": {"reference": "organization/department-1"},
}
DOC_UNIT_WITH_PERIOD = dict(
    DOC_UNIT,
    extension=[
        {
            "url": "unit_period",
            "valuePeriod": {"start": "2025-01-01T00:00:00Z", "end": "2025-12-31T23:59:59Z"},
        }
    ],
)


def org(code: str, level: str, name: str, parent: str | None = None) -> dict:
    """The guide's create_organization() body."""
    body = {
        "resourceType": "Organization",
        "identifier": [{"value": code}],
        "type": [{"coding": [{"code": level}]}],
        "name": name,
    }
    if parent:
        body["partOf"] = {"reference": f"Organization/{parent}"}
    return body


def counters(resource: dict) -> dict[str, int]:
    return {
        item["url"].removeprefix(COUNTER): item["valueInteger"]
        for item in resource.get("extension", [])
        if item["url"].startswith(COUNTER)
    }


@pytest.fixture
def tree(client):
    """The documented site -> department -> unit (site-1, department-1, unit-1)."""
    for body in (DOC_SITE, DOC_DEPARTMENT, DOC_UNIT):
        assert client.post(ORG, json=body).status_code == 201
    return client


def test_documented_site_is_created_as_site_1(client):
    response = client.post(ORG, json=DOC_SITE)
    assert response.status_code == 201
    site = response.json()
    assert site["id"] == "site-1"
    assert site["identifier"] == [
        {"use": "official", "value": "site-1"},
        {"use": "usual", "value": "HOSP001"},
    ]
    assert site["type"] == [
        {
            "coding": [
                {"system": LEVEL_SYSTEM, "code": "site", "display": "Site"},
                {"system": HL7_SYSTEM, "code": "prov", "display": "Healthcare Provider"},
            ]
        }
    ]
    assert site["name"] == "Paris University Hospital"
    assert "partOf" not in site
    assert response.headers["location"].endswith("/v4.3.0/Organization/site-1")


def test_documented_department_and_unit_answer_parent_with_display(tree):
    department = tree.get(f"{ORG}department-1/").json()
    assert department["type"][0]["coding"][0]["code"] == "department"
    assert department["type"][0]["coding"][1]["code"] == "dept"
    assert department["partOf"] == {
        "reference": "Organization/site-1",
        "display": "Paris University Hospital",
    }
    unit = tree.get(f"{ORG}unit-1/").json()
    assert unit["type"][0]["coding"][1] == {
        "system": HL7_SYSTEM,
        "code": "team",
        "display": "Organizational team",
    }
    assert unit["partOf"] == {
        "reference": "Organization/department-1",
        "display": "Cardiology Department",
    }


def test_documented_unit_with_activity_period(client, engine):
    client.post(ORG, json=DOC_SITE)
    client.post(ORG, json=DOC_DEPARTMENT)
    response = client.post(ORG, json=DOC_UNIT_WITH_PERIOD)
    assert response.status_code == 201
    period = [item for item in response.json()["extension"] if item["url"] == "unit_period"]
    assert period == [
        {"url": "unit_period", "valuePeriod": {"start": "2025-01-01", "end": "2025-12-31"}}
    ]
    with engine.connect() as conn:
        row = conn.execute(select(dwh_thesaurus_unit)).mappings().one()
    assert str(row["unit_start_date"]) == "2025-01-01"
    assert str(row["unit_end_date"]) == "2025-12-31"


def test_read_on_codoc_and_standard_paths(tree):
    for path in (f"{ORG}site-1/", f"{ORG}site-1", "/v4.3.0/Organization/site-1"):
        response = tree.get(path)
        assert response.status_code == 200, path
        assert response.json()["name"] == "Paris University Hospital"
    assert tree.get(f"{ORG}1/").status_code == 404
    assert tree.get(f"{ORG}site-99/").status_code == 404


def test_hierarchy_guide_complete_script(client):
    site = client.post(ORG, json=org("CHU_PARIS", "site", "CHU Paris - Saint-Antoine Site")).json()
    cardio = client.post(ORG, json=org("CARDIO", "department", "Cardiology Department", site["id"]))
    neuro = client.post(ORG, json=org("NEURO", "department", "Neurology Department", site["id"]))
    assert (cardio.status_code, neuro.status_code) == (201, 201)
    units = [
        ("CARDIO_A", "Cardiology - Unit A - Intensive Care", cardio.json()["id"]),
        ("CARDIO_B", "Cardiology - Unit B - Hospitalization", cardio.json()["id"]),
        ("CARDIO_C", "Cardiology - Unit C - Day Hospital", cardio.json()["id"]),
        ("NEURO_STROKE", "Neurology - Stroke Unit", neuro.json()["id"]),
        ("NEURO_EPIL", "Neurology - Epilepsy Unit", neuro.json()["id"]),
    ]
    created = [
        client.post(ORG, json=org(code, "unit", name, parent)) for code, name, parent in units
    ]
    assert [item.status_code for item in created] == [201] * 5
    assert [item.json()["id"] for item in created] == [f"unit-{n}" for n in range(1, 6)]
    # Step 5 of the guide: walk up from the first unit through partOf
    chain, current = [], created[0].json()["id"]
    while current:
        found = client.get(f"{ORG}{current}/").json()
        chain.append((found["name"], found["type"][0]["coding"][0]["code"]))
        current = found["partOf"]["reference"].split("/")[-1] if "partOf" in found else None
    assert chain == [
        ("Cardiology - Unit A - Intensive Care", "unit"),
        ("Cardiology Department", "department"),
        ("CHU Paris - Saint-Antoine Site", "site"),
    ]
    assert counters(client.get(f"{ORG}{cardio.json()['id']}/").json())["child_count"] == 3


def test_hierarchy_guide_with_instances(client):
    instance = client.post(ORG, json=org("GH_PARIS", "instance", "Paris Hospital Group")).json()
    assert instance["id"] == "instance-1"
    assert instance["type"] == [
        {"coding": [{"system": LEVEL_SYSTEM, "code": "instance", "display": "Instance"}]}
    ]
    site1 = client.post(ORG, json=org("SITE_A", "site", "Site A - Pitié-Salpêtrière", "instance-1"))
    site2 = client.post(ORG, json=org("SITE_B", "site", "Site B - Saint-Antoine", "instance-1"))
    dept = client.post(ORG, json=org("CARDIO", "department", "Cardiology", site1.json()["id"]))
    unit = client.post(ORG, json=org("CARDIO_A", "unit", "Cardiology - Unit A", "department-1"))
    assert [r.status_code for r in (site1, site2, dept, unit)] == [201] * 4
    assert site2.json()["partOf"] == {
        "reference": "Organization/instance-1",
        "display": "Paris Hospital Group",
    }
    direct = client.post(ORG, json=org("ONCO", "department", "Oncology", "instance-1"))
    assert direct.status_code == 201
    assert direct.json()["partOf"]["reference"] == "Organization/instance-1"
    assert counters(client.get(f"{ORG}instance-1/").json())["child_count"] == 3


def test_hierarchy_guide_update_renames_department(client):
    site = client.post(ORG, json=org("CHU_PARIS", "site", "CHU Paris")).json()
    client.post(ORG, json=org("CARDIO", "department", "Cardiology Department", site["id"]))
    body = org("CARDIO", "department", "Cardiology and Vascular Diseases Department", site["id"])
    response = client.put(f"{ORG}department-1/", json=body)
    assert response.status_code == 200
    assert response.json()["name"] == "Cardiology and Vascular Diseases Department"
    assert response.json()["meta"]["versionId"] == "2"


def test_patient_record_guide_unit_needs_a_department(client, engine):
    """The guide creates a unit without partOf: the contract makes partOf required (400)."""
    response = client.post(ORG, json=org("CARDIO_A", "unit", "Cardiology Unit A"))
    assert response.status_code == 400
    issue = response.json()["issue"][0]
    assert (issue["code"], issue["diagnostics"]) == (
        "required",
        "Organization partOf is required for unit",
    )
    assert count_rows(engine, *ORG_TABLES) == 0


@pytest.mark.parametrize("codings", [[{"code": "site"}], [{"code": "prov"}]])
def test_level_codes_and_hl7_codes_are_both_accepted(client, codings):
    body = dict(DOC_SITE, type=[{"coding": codings}])
    assert client.post(ORG, json=body).json()["id"] == "site-1"


def test_answered_type_with_two_codings_is_read_by_its_level_coding(client):
    body = dict(
        DOC_SITE,
        type=[
            {
                "coding": [
                    {"system": HL7_SYSTEM, "code": "dept"},
                    {"system": LEVEL_SYSTEM, "code": "site"},
                ]
            }
        ],
    )
    assert client.post(ORG, json=body).json()["id"] == "site-1"


def test_get_then_put_round_trips_every_level(client):
    client.post(ORG, json=org("GH", "instance", "Group"))
    client.post(ORG, json=org("S", "site", "Site", "instance-1"))
    client.post(ORG, json=org("D", "department", "Dept", "site-1"))
    client.post(
        ORG, json=DOC_UNIT_WITH_PERIOD | {"partOf": {"reference": "Organization/department-1"}}
    )
    for ident in ("instance-1", "site-1", "department-1", "unit-1"):
        stored = client.get(f"{ORG}{ident}/").json()
        again = client.put(f"/v4.3.0/Organization/{ident}", json=stored)
        assert again.status_code == 200, again.text
        stored.pop("meta")
        answered = again.json()
        assert answered.pop("meta")["versionId"] == "2"
        assert answered == stored


def test_patch_changes_only_the_name(tree):
    response = tree.patch(f"{ORG}unit-1/", json={"name": "Cardiac ICU"})
    assert response.status_code == 200
    assert response.json()["name"] == "Cardiac ICU"
    assert response.json()["partOf"]["reference"] == "Organization/department-1"
    assert response.json()["identifier"][1]["value"] == "ICU001"


def test_put_cannot_change_the_level(tree):
    body = dict(DOC_SITE, type=[{"coding": [{"code": "instance"}]}])
    response = tree.put(f"{ORG}site-1/", json=body)
    assert response.status_code == 400
    assert "level cannot change" in response.json()["issue"][0]["diagnostics"]
    assert tree.get(f"{ORG}site-1/").json()["meta"]["versionId"] == "1"


def test_counter_extensions_are_read_only(tree, engine):
    stored = tree.get(f"{ORG}site-1/").json()
    stored["extension"] = [{"url": f"{COUNTER}child_count", "valueInteger": 42}]
    answered = tree.put(f"{ORG}site-1/", json=stored).json()
    assert counters(answered) == {"patient_count": 0, "stay_count": 0, "child_count": 1}


def test_counters_count_patients_stays_and_children(tree, engine):
    first = make_patient(engine, ipp="A")
    second = make_patient(engine, ipp="B")
    with engine.begin() as conn:
        conn.execute(
            dwh_patient.update()
            .where(dwh_patient.c.patient_num == first)
            .values(managing_org_level="department", managing_org_num=1)
        )
    stay = make_stay(engine, patient_num=second)
    other_stay = make_stay(engine, patient_num=first)
    with engine.begin() as conn:
        conn.execute(
            dwh_patient_stay.update()
            .where(dwh_patient_stay.c.stay_num == other_stay)
            .values(service_org_level="department", service_org_num=1)
        )
        for unit_num in (1, 1):
            conn.execute(
                dwh_patient_mvt.insert().values(
                    patient_num=second,
                    stay_num=stay,
                    entry_date=datetime(2024, 1, 10, tzinfo=UTC),
                    department_num=1,
                    unit_num=unit_num,
                    row_version=1,
                )
            )
    assert counters(tree.get(f"{ORG}department-1/").json()) == {
        "patient_count": 2,
        "stay_count": 2,
        "child_count": 1,
    }
    assert counters(tree.get(f"{ORG}unit-1/").json()) == {
        "patient_count": 1,
        "stay_count": 1,
        "child_count": 0,
    }


def _without(body: dict, field: str) -> dict:
    copy = dict(body)
    copy.pop(field)
    return copy


@pytest.mark.parametrize(
    ("body", "code", "needle"),
    [
        (_without(DOC_DEPARTMENT, "name"), "required", "name"),
        (
            _without(DOC_DEPARTMENT, "partOf"),
            "required",
            "Organization partOf is required for department",
        ),
        (
            _without(DOC_UNIT, "partOf"),
            "required",
            "Organization partOf is required for unit",
        ),
        (
            dict(DOC_UNIT, partOf={"reference": "Organization/site-1"}),
            "invalid",
            "Unit parent must be a Department, got Site",
        ),
        (
            dict(DOC_DEPARTMENT, partOf={"reference": "Organization/department-1"}),
            "invalid",
            "Department parent must be an Instance or a Site, got Department",
        ),
        (
            dict(DOC_SITE, partOf={"reference": "Organization/site-1"}),
            "invalid",
            "Site parent must be an Instance, got Site",
        ),
        (
            org("GH", "instance", "Group", "site-1"),
            "invalid",
            "root of the hierarchy",
        ),
        (
            dict(DOC_DEPARTMENT, partOf={"reference": "Organization/site-999"}),
            "not-found",
            "Site with ID 999 does not exist",
        ),
        (
            dict(DOC_UNIT, partOf={"reference": "Organization/department-999"}),
            "not-found",
            "Department with ID 999 does not exist",
        ),
        (
            org("S2", "site", "Site", "instance-999"),
            "not-found",
            "Instance with ID 999 does not exist",
        ),
        (dict(DOC_UNIT, partOf={"reference": "Organization/999"}), "invalid", "999"),
        (dict(DOC_UNIT, partOf={"reference": "Patient/1"}), "invalid", "Organization"),
        (
            dict(DOC_SITE, extension=DOC_UNIT_WITH_PERIOD["extension"]),
            "invalid",
            "units only",
        ),
        (
            dict(
                DOC_UNIT, extension=[{"url": "unit_period", "valuePeriod": {"start": "2025-13-01"}}]
            ),
            "invalid",
            "date",
        ),
        (
            dict(
                DOC_UNIT,
                extension=[
                    {
                        "url": "unit_period",
                        "valuePeriod": {"start": "2025-06-01", "end": "2025-01-01"},
                    }
                ],
            ),
            "invalid",
            "ends before it starts",
        ),
        (dict(DOC_DEPARTMENT, name="N" * 401), "invalid", "400"),
        (dict(DOC_DEPARTMENT, resourceType="Patient"), "invalid", "resourceType"),
    ],
)
def test_bad_input_is_400_and_stores_nothing(tree, engine, body, code, needle):
    before = count_rows(engine, *ORG_TABLES)
    response = tree.post(ORG, json=body)
    assert response.status_code == 400, response.text
    issue = response.json()["issue"][0]
    assert issue["code"] == code
    assert needle in issue["diagnostics"]
    assert count_rows(engine, *ORG_TABLES) == before


def test_duplicate_code_in_a_level_is_409(tree, engine):
    response = tree.post(ORG, json=dict(DOC_DEPARTMENT, name="Another"))
    assert response.status_code == 409
    assert response.json()["issue"][0]["code"] == "duplicate"
    assert count_rows(engine, dwh_thesaurus_department) == 1
    same_code_other_level = dict(DOC_UNIT, identifier=[{"value": "CARD001"}])
    assert tree.post(ORG, json=same_code_other_level).status_code == 201


def test_put_keeping_its_own_code_is_not_a_duplicate(tree):
    body = dict(DOC_DEPARTMENT, name="Cardiology")
    assert tree.put(f"{ORG}department-1/", json=body).status_code == 200


def test_delete_leaf_then_parents(tree, engine):
    assert tree.delete(f"{ORG}unit-1/").status_code == 204
    assert tree.delete(f"{ORG}department-1/").status_code == 204
    assert tree.delete(f"{ORG}site-1/").status_code == 204
    assert count_rows(engine, *ORG_TABLES) == 0


def test_delete_with_children_is_409(tree, engine):
    response = tree.delete(f"{ORG}department-1/")
    assert response.status_code == 409
    issue = response.json()["issue"][0]
    assert issue["code"] == "conflict"
    assert issue["diagnostics"] == "Department department-1 is referenced by 1 Unit"
    assert count_rows(engine, dwh_thesaurus_department) == 1


def _seed_fact(engine, patient: int, **columns) -> None:
    with engine.begin() as conn:
        conn.execute(dwh_thesaurus.insert().values(thesaurus_code="Acte", label="Acts"))
        concept = conn.execute(
            dwh_thesaurus_data.insert()
            .values(thesaurus_code="Acte", concept_code="X1", concept_str="Act")
            .returning(dwh_thesaurus_data.c.thesaurus_data_num)
        ).scalar_one()
        when = datetime(2024, 1, 15, tzinfo=UTC)
        conn.execute(
            dwh_data.insert().values(
                patient_num=patient,
                thesaurus_data_num=concept,
                thesaurus_code="Acte",
                document_date=when,
                start_date=when,
                **columns,
            )
        )


def test_delete_unit_referenced_by_movement_document_and_fact_is_409(tree, engine):
    patient = make_patient(engine)
    stay = make_stay(engine, patient_num=patient)
    document = make_document(engine, patient_num=patient, stay_num=stay)
    with engine.begin() as conn:
        conn.execute(
            dwh_patient_mvt.insert().values(
                patient_num=patient,
                stay_num=stay,
                entry_date=datetime(2024, 1, 10, tzinfo=UTC),
                unit_num=1,
                service_org_level="unit",
                service_org_num=1,
            )
        )
        conn.execute(
            dwh_document_author.insert().values(
                document_num=document, author_order=0, org_level="unit", org_num=1
            )
        )
    _seed_fact(engine, patient, unit_num=1)
    response = tree.delete(f"{ORG}unit-1/")
    assert response.status_code == 409
    assert response.json()["issue"][0]["diagnostics"] == (
        "Unit unit-1 is referenced by 1 Encounter, 1 Procedure, 1 DocumentReference"
    )
    assert count_rows(engine, dwh_thesaurus_unit) == 1


def test_delete_site_managing_patients_and_serving_stays_is_409(tree, engine):
    patient = make_patient(engine)
    stay = make_stay(engine, patient_num=patient)
    with engine.begin() as conn:
        conn.execute(dwh_patient.update().values(managing_org_level="site", managing_org_num=1))
        conn.execute(
            dwh_patient_stay.update()
            .where(dwh_patient_stay.c.stay_num == stay)
            .values(service_org_level="site", service_org_num=1)
        )
    response = tree.delete(f"{ORG}site-1/")
    assert response.status_code == 409
    assert response.json()["issue"][0]["diagnostics"] == (
        "Site site-1 is referenced by 1 Department, 1 Patient, 1 Encounter"
    )


def test_delete_department_with_document_of_that_department_is_409(client, engine):
    client.post(ORG, json=DOC_SITE)
    client.post(ORG, json=DOC_DEPARTMENT)
    patient = make_patient(engine)
    document = make_document(engine, patient_num=patient)
    with engine.begin() as conn:
        from codoc_fhir.warehouse.schema import dwh_document

        conn.execute(dwh_document.update().values(department_num=1))
        conn.execute(
            dwh_document_author.insert().values(
                document_num=document, author_order=0, org_level="department", org_num=1
            )
        )
    response = client.delete(f"{ORG}department-1/")
    assert response.status_code == 409
    assert response.json()["issue"][0]["diagnostics"] == (
        "Department department-1 is referenced by 1 DocumentReference"
    )


def _ids(response) -> list[str]:
    assert response.status_code == 200, response.text
    return sorted(entry["resource"]["id"] for entry in response.json().get("entry", []))


def test_search_organizations(tree):
    assert _ids(tree.get("/v4.3.0/Organization?type=department")) == ["department-1"]
    assert _ids(tree.get("/v4.3.0/Organization?type=team")) == ["unit-1"]
    assert _ids(tree.get("/v4.3.0/Organization?partof=Organization/department-1")) == ["unit-1"]
    assert _ids(tree.get("/v4.3.0/Organization?identifier=HOSP001")) == ["site-1"]
    assert _ids(tree.get("/v4.3.0/organization/")) == ["department-1", "site-1", "unit-1"]


def test_search_organizations_by_name(tree):
    assert _ids(tree.get("/v4.3.0/Organization?name=cardio")) == ["department-1"]
