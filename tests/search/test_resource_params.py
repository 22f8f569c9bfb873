"""The parameters of every resource type, on rows written straight into the warehouse."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from codoc_fhir.warehouse import schema
from tests.factories import (
    NOW,
    make_department,
    make_document,
    make_patient,
    make_site,
    make_stay,
    make_unit,
)
from tests.search.helpers import at, concept, fact, ids, link


def _insert(engine, table, **values) -> int:
    values.setdefault("update_date", NOW)
    values.setdefault("row_version", 1)
    key = next(iter(table.primary_key.columns))
    with engine.begin() as conn:
        return int(conn.execute(table.insert().values(**values).returning(key)).scalar_one())


@pytest.fixture
def warehouse(client, engine):
    """Three patients, an organisation tree, stays, a movement, documents and facts."""
    site = make_site(engine)
    department = make_department(engine, site_num=site)
    make_unit(engine, department_num=department)
    p1 = make_patient(engine)
    p2 = make_patient(
        engine,
        lastname="Martin",
        firstname="Héloïse",
        sex="F",
        birth_date=at("1990-02-03T00:00:00Z"),
    )
    p3 = make_patient(
        engine,
        lastname="Dupont",
        firstname="Élodie",
        sex="F",
        birth_date=at("1975-07-01T00:00:00Z"),
    )
    with engine.begin() as conn:
        conn.execute(
            update(schema.dwh_patient)
            .where(schema.dwh_patient.c.patient_num == p3)
            .values(death_code="d", death_date=at("2020-01-01T00:00:00Z"))
        )
    stay1 = make_stay(
        engine,
        patient_num=p1,
        entry_date=at("2024-01-10T08:00:00Z"),
        out_date=at("2024-01-15T10:00:00Z"),
        encounter_num="VISIT-1",
    )
    make_stay(engine, patient_num=p2, entry_date=at("2024-03-01T08:00:00Z"))
    _insert(
        engine,
        schema.dwh_patient_mvt,
        patient_num=p1,
        stay_num=stay1,
        entry_date=at("2024-01-11T08:00:00Z"),
        out_date=at("2024-01-12T10:00:00Z"),
        status="finished",
        class_code="AMB",
        type_mvt="C",
        department_num=department,
    )
    doc1 = make_document(
        engine, patient_num=p1, stay_num=stay1, document_date=at("2024-01-12T09:00:00Z")
    )
    make_document(engine, patient_num=p2, document_date=at("2024-03-02T09:00:00Z"))
    fact(
        engine,
        patient_num=p1,
        when=at("2024-01-12T06:00:00Z"),
        thesaurus="Biologie",
        code="CRP",
        stay_num=stay1,
        val_numeric=5.4,
        data_unit="mg/L",
        value_kind="quantity",
        unit_system="http://unitsofmeasure.org",
        unit_code="mg/L",
        data_status="final",
    )
    fact(
        engine,
        patient_num=p2,
        when=at("2024-03-02T06:00:00Z"),
        thesaurus="Biologie",
        code="CRP",
        val_numeric=12.0,
        data_unit="mg/L",
        value_kind="quantity",
        unit_system="http://unitsofmeasure.org",
        unit_code="mg/L",
        data_status="final",
    )
    fact(
        engine,
        patient_num=p1,
        when=at("2024-01-11T12:00:00Z"),
        thesaurus="Prescription",
        code="PARA500",
        stay_num=stay1,
    )
    fact(
        engine, patient_num=p2, when=at("2024-03-03T12:00:00Z"), thesaurus="Diagnostic", code="I10"
    )
    _insert(
        engine,
        schema.dwh_patient_data,
        patient_num=p1,
        code_system="http://loinc.org",
        code="29463-7",
        code_display="Body weight",
        status="final",
        effective_date=at("2024-01-10T09:00:00Z"),
        val_numeric=72.5,
        data_unit="kg",
        unit_system="http://unitsofmeasure.org",
        unit_code="kg",
        value_kind="quantity",
    )
    fever = concept(engine, "Phenotypes", "FEVER", "Fever")
    _insert(
        engine,
        schema.dwh_enrsem,
        document_num=doc1,
        patient_num=p1,
        thesaurus_data_num=fever,
        thesaurus_code="Phenotypes",
        concept_str_found="fever",
        certainty=1,
        context="patient_text",
        document_date=at("2024-01-12T09:00:00Z"),
    )
    return client


def found(client, url: str) -> list[str]:
    response = client.get(url)
    assert response.status_code == 200, response.text
    return sorted(ids(response.json()))


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("family=martin", ["2"]),
        ("family=MART", ["2"]),
        ("given=Heloise", ["2"]),
        ("given=HÉLOÏSE", ["2"]),
        ("given=elodie", ["3"]),
        ("name=eloise", []),
        ("name:contains=eloi", ["2"]),
        ("name=smith,dupont", ["1", "3"]),
        ("family:exact=Martin", ["2"]),
        ("family:exact=martin", []),
        ("gender=female", ["2", "3"]),
        ("gender:not=female", ["1"]),
        ("birthdate=1980", ["1"]),
        ("birthdate=lt1980", ["3"]),
        ("birthdate=ge1980-05-15", ["1", "2"]),
        ("identifier=IPP000002", ["2"]),
        ("identifier=HIS|IPP000001", ["1"]),
        ("deceased=true", ["3"]),
    ],
)
def test_patient(warehouse, query, expected):
    assert found(warehouse, f"/v4.3.0/Patient?{query}") == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("subject=Patient/1", ["1", "movement-1"]),
        ("patient=2", ["2"]),
        ("date=2024-01", ["1", "movement-1"]),
        ("date=2024-01-12", []),
        ("date=ge2024-02", ["2"]),
        ("date=le2024-01-11", ["1"]),  # the movement of the 11th goes on after it
        ("date=le2024-01-12", ["1", "movement-1"]),
        ("date=sa2024-02-01", ["2"]),
        ("date=eb2024-02", ["1", "movement-1"]),
        ("date=2024-03", []),
        ("date=gt2024-03-05", ["2"]),
        ("date=ne2024-01", ["2"]),
        ("part-of=Encounter/1", ["movement-1"]),
        ("part-of:missing=true", ["1", "2"]),
        ("class=AMB", ["movement-1"]),
        ("class=http://terminology.hl7.org/CodeSystem/v3-ActCode|IMP", ["1", "2"]),
        ("status=finished", ["1", "2", "movement-1"]),
        ("identifier=VISIT-1", ["1"]),
        ("_id=movement-1", ["movement-1"]),
    ],
)
def test_encounter_across_stays_and_movements(warehouse, query, expected):
    assert found(warehouse, f"/v4.3.0/Encounter?{query}") == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("/v4.3.0/DocumentReference?subject=Patient/2", ["2"]),
        ("/v4.3.0/DocumentReference?date=2024-01", ["1"]),
        ("/v4.3.0/DocumentReference?encounter=Encounter/1", ["1"]),
        ("/v4.3.0/DocumentReference?status=current", ["1", "2"]),
        ("/v4.3.0/Observation?subject=Patient/1", ["1", "patient-data-1", "phenotype-1"]),
        ("/v4.3.0/Observation?value-quantity=5.4", ["1"]),
        ("/v4.3.0/Observation?value-quantity=gt10", ["2", "patient-data-1"]),
        ("/v4.3.0/Observation?value-quantity=gt10||mg/L", ["2"]),
        (
            "/v4.3.0/Observation?value-quantity=le72.5|http://unitsofmeasure.org|kg",
            ["patient-data-1"],
        ),
        ("/v4.3.0/Observation?value-quantity=5.4||mg/L", ["1"]),
        ("/v4.3.0/Observation?value-quantity=5.4||kg", []),
        ("/v4.3.0/Observation?derived-from=DocumentReference/1", ["phenotype-1"]),
        ("/v4.3.0/Observation?code=FEVER", ["phenotype-1"]),
        ("/v4.3.0/Observation?code=http://loinc.org|29463-7", ["patient-data-1"]),
        ("/v4.3.0/Observation?code=urn:codoc:fhir:codesystem:Biologie|CRP", ["1", "2"]),
        ("/v4.3.0/Observation?date=2024-01-12", ["1", "phenotype-1"]),
        ("/v4.3.0/Observation?encounter=Encounter/1", ["1", "phenotype-1"]),
        ("/v4.3.0/observation/phenotype/?subject=Patient/1", ["phenotype-1"]),
        ("/v4.3.0/MedicationRequest?authoredon=2024-01-11", ["3"]),
        ("/v4.3.0/MedicationRequest?code=PARA500&encounter=Encounter/1", ["3"]),
        ("/v4.3.0/DiagnosticReport?date=2024-03&subject=Patient/2", ["4"]),
        ("/v4.3.0/Organization?name=cardio", ["department-1"]),
        ("/v4.3.0/Organization?type=unit", ["unit-1"]),
        ("/v4.3.0/Organization?partof=Organization/department-1", ["unit-1"]),
        ("/v4.3.0/Organization?identifier=CARD", ["department-1"]),
        ("/v4.3.0/Patient/1/Observation", ["1", "patient-data-1", "phenotype-1"]),
        ("/v4.3.0/patient/1/encounter/", ["1", "movement-1"]),
        ("/v4.3.0/Patient/2/DocumentReference?date=2024", ["2"]),
        ("/v4.3.0/Patient/2/DiagnosticReport", ["4"]),
        ("/v4.3.0/Patient/1/MedicationRequest", ["3"]),
    ],
)
def test_other_resources(warehouse, url, expected):
    assert found(warehouse, url) == expected


def test_sort_across_the_three_observation_tables(warehouse):
    bundle = warehouse.get("/v4.3.0/Observation?subject=Patient/1&_sort=date").json()
    assert ids(bundle) == ["patient-data-1", "1", "phenotype-1"]
    bundle = warehouse.get("/v4.3.0/Observation?subject=Patient/1&_sort=-date&_count=1").json()
    assert ids(bundle) == ["phenotype-1"]
    assert ids(warehouse.get(link(bundle, "next")).json()) == ["1"]


def test_codesystem_search(warehouse, engine):
    with engine.connect() as conn:
        numbers = dict(
            conn.execute(
                select(schema.dwh_thesaurus.c.thesaurus_code, schema.dwh_thesaurus.c.thesaurus_num)
            ).all()
        )
    biologie, phenotypes = str(numbers["Biologie"]), str(numbers["Phenotypes"])
    assert found(warehouse, "/v4.3.0/CodeSystem?url=urn:codoc:fhir:codesystem:Biologie") == [
        biologie
    ]
    assert found(warehouse, "/v4.3.0/CodeSystem?name=bio") == [biologie]
    assert found(warehouse, "/v4.3.0/CodeSystem?code=FEVER") == [phenotypes]


def test_includes_follow_every_declared_reference(warehouse):
    bundle = warehouse.get(
        "/v4.3.0/Observation?subject=Patient/1&_include=Observation:derived-from"
        "&_include=Observation:encounter"
    ).json()
    included = sorted(
        (e["resource"]["resourceType"], e["resource"]["id"])
        for e in bundle["entry"]
        if e["search"]["mode"] == "include"
    )
    assert included == [("DocumentReference", "1"), ("Encounter", "1")]
    stays = warehouse.get("/v4.3.0/Encounter?_id=1&_revinclude=Encounter:part-of").json()
    assert ids(stays) == ["1"] and ids(stays, "include") == ["movement-1"]
    documents = warehouse.get(
        "/v4.3.0/DocumentReference?_id=1&_revinclude=Observation:derived-from"
        "&_include=DocumentReference:subject"
    ).json()
    assert sorted(ids(documents, "include")) == ["1", "phenotype-1"]


def test_capability_statement_lists_search_parameters(warehouse):
    statement = warehouse.get("/v4.3.0/metadata").json()
    resources = {item["type"]: item for item in statement["rest"][0]["resource"]}
    procedure = {param["name"]: param["type"] for param in resources["Procedure"]["searchParam"]}
    assert procedure["date"] == "date" and procedure["subject"] == "reference"
    assert procedure["_id"] == "token" and procedure["_lastUpdated"] == "date"
    assert "Procedure:subject" in resources["Procedure"]["searchInclude"]
    assert "Procedure:subject" in resources["Patient"]["searchRevInclude"]
    observation = {param["name"] for param in resources["Observation"]["searchParam"]}
    assert {"value-quantity", "derived-from", "code", "date"} <= observation
