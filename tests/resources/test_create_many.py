"""Resource.create_many (the bulk import's batches) writes exactly the rows that one
`create` per body writes: same keys, same columns, same kept elements, tokens and history."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

from codoc_fhir.fhir.errors import FhirError
from codoc_fhir.resources.registry import build_registry
from codoc_fhir.warehouse import schema
from codoc_fhir.warehouse.copy import insert_many
from tests.conftest import empty_tables, make_settings
from tests.factories import seed_procedure_context

# Columns a write stamps with the time it ran: they differ between two runs.
STAMPS = {"update_date", "history_date"}
TABLES = (
    schema.dwh_patient,
    schema.dwh_patient_ipphist,
    schema.dwh_data,
    schema.dwh_thesaurus,
    schema.dwh_thesaurus_data,
    schema.fhir_token,
    schema.dwh_resource_history,
)


def patient(n: int) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [
            {"use": "usual", "system": "urn:test:ipp", "value": f"IPP-{n}"},
            {"use": "secondary", "system": "urn:test:other", "value": f"O-{n}"},
        ],
        "name": [{"family": f"Family{n}", "given": ["Ann", "Marie"]}],
        "gender": "female" if n % 2 else "male",
        "birthDate": f"19{50 + n}-03-0{1 + n % 8}",
        "telecom": [{"system": "phone", "value": f"0100{n}"}],
    }


def procedure(n: int) -> dict[str, Any]:
    return {
        "resourceType": "Procedure",
        "status": "completed",
        "code": {"coding": [{"system": "urn:test:act", "code": f"ACT{n % 2}", "display": "Act"}]},
        "subject": {"reference": "Patient/1"},
        "encounter": {"reference": "Encounter/1"},
        "performedPeriod": {"start": "2024-01-15T14:00:00Z", "end": "2024-01-15T15:00:00Z"},
        "performer": [{"actor": {"reference": "Organization/department-1"}}],
        "note": [{"text": f"note {n}"}],
    }


def lab(n: int) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "laboratory",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": f"2345-{n % 3}"}]},
        "subject": {"reference": "Patient/1"},
        "effectiveDateTime": "2024-01-21T07:00:00Z",
        "valueQuantity": {"value": 90 + n, "unit": "mg/dL"},
    }


VALUES: list[dict[str, Any]] = [
    {"valueQuantity": {"value": 5, "unit": "mmol/L", "system": "http://unitsofmeasure.org"}},
    {"valueString": "haemolysed"},
    {"valueInteger": 3},
    {
        "valueCodeableConcept": {
            "coding": [{"system": "http://snomed.info/sct", "code": "10828004"}]
        }
    },
    {"valueRange": {"low": {"value": 1.5}, "high": {"value": 2}}},
]


def lab_forms(n: int) -> dict[str, Any]:
    """Lab results of every value form, dates with offsets, periods and kept elements."""
    body = {key: value for key, value in lab(n).items() if key != "valueQuantity"}
    body |= VALUES[n % len(VALUES)]
    if n % 2:
        body.pop("effectiveDateTime")
        body["effectivePeriod"] = {"start": "2024-03-01T08:00:00+02:00", "end": "2024-03-02"}
        body["interpretation"] = [{"coding": [{"code": "H", "display": "High"}]}]
    else:
        body["effectiveDateTime"] = "2024-02"
        body["referenceRange"] = [{"low": {"value": 70}, "high": {"value": 90.5}}]
    body["identifier"] = [{"use": "usual", "system": "urn:test:lab", "value": f"L{n}"}]
    body["performer"] = [{"reference": "Organization/unit-1"}]
    return body


def patient_forms(n: int) -> dict[str, Any]:
    """Patients with a death, a maiden name, an address, a managing organisation, partial
    birth dates."""
    body = patient(n)
    body["birthDate"] = ["1960", "1961-04", "1962-05-06"][n % 3]
    body["name"].append({"use": "maiden", "family": f"Maiden{n}"})
    body["address"] = [{"line": [f"{n} Main Street"], "city": "Lyon", "postalCode": "69001"}]
    body["managingOrganization"] = {"reference": "Organization/department-1"}
    if n % 2:
        body["deceasedDateTime"] = "2024-01-15T14:30:00-05:00"
    else:
        body["deceasedBoolean"] = n == 2
    return body


def medication(n: int) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {"coding": [{"code": f"AMOX{n % 2}", "display": "Amox"}]},
        "subject": {"reference": "Patient/1"},
        "encounter": {"reference": "Encounter/1"},
        "authoredOn": "2024-01-15T09:00:00+01:00",
        "dosageInstruction": [
            {
                "doseAndRate": [{"doseQuantity": {"value": 500 + n, "unit": "mg"}}],
                "timing": {"repeat": {"frequency": 3, "period": 1, "periodUnit": "d"}},
                "route": {"text": "Oral"},
            }
        ],
        "dispenseRequest": {"validityPeriod": {"start": "2024-01-15", "end": "2024-01-22"}},
        "performer": {"reference": "Organization/department-1"},
    }


def report(n: int) -> dict[str, Any]:
    return {
        "resourceType": "DiagnosticReport",
        "status": "final",
        "code": {"coding": [{"code": "MRI-BRAIN", "display": "Brain MRI"}]},
        "subject": {"reference": "Patient/1"},
        "encounter": {"reference": "Encounter/1"},
        "effectiveDateTime": "2024-01-19T10:00:00Z",
        "issued": "2024-01-19T15:30:00.250+02:00",
        "conclusion": f"Conclusion {n}.",
        "performer": [{"reference": "Organization/department-1"}],
    }


def condition(n: int) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "identifier": [{"use": "usual", "value": f"COND-{n}"}],
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": "resolved" if n % 2 else "active",
                }
            ]
        },
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": f"4448140{n}"}]},
        "subject": {"reference": "Patient/1"},
        "encounter": {"reference": "Encounter/1"},
        "onsetDateTime": "2015-06-13T05:10:14-04:00" if n % 2 else "2015-06",
        "abatementDateTime": "2015-06-27T05:10:14-04:00",
        "recordedDate": "2015-06-13",
    }


def snapshot(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    """Every row of the tables a create writes, without the time stamps."""
    found = {}
    with engine.connect() as conn:
        for table in TABLES:
            order = list(table.primary_key.columns) or list(table.columns)
            rows = conn.execute(select(table).order_by(*order)).mappings()
            found[table.name] = [normalised(dict(row)) for row in rows]
    return found


def normalised(row: dict[str, Any]) -> dict[str, Any]:
    row = {name: value for name, value in row.items() if name not in STAMPS}
    if row.get("resource_json"):
        resource = orjson.loads(row["resource_json"])
        resource["meta"].pop("lastUpdated", None)
        row["resource_json"] = resource
    return row


def load(engine: Engine, database_url: str, bodies: list[dict], *, batch: bool) -> Any:
    """Seed the context, then create the bodies one by one or as one batch."""
    empty_tables(engine)
    seed_procedure_context(engine)
    registry = build_registry(make_settings(database_url))
    kind = registry.types[bodies[0]["resourceType"]].kind_for_create(bodies[0])
    with engine.begin() as conn:
        if batch:
            return [resource["id"] for resource in kind.create_many(conn, copy.deepcopy(bodies))]
        return [kind.create(conn, copy.deepcopy(body), read_back=False)["id"] for body in bodies]


MAKERS = [patient, patient_forms, procedure, lab, lab_forms, medication, report, condition]


@pytest.mark.parametrize("make", MAKERS, ids=[make.__name__ for make in MAKERS])
def test_create_many_writes_the_rows_of_one_create_per_body(engine, database_url, make):
    bodies = [make(n) for n in range(5)]
    one_by_one = load(engine, database_url, bodies, batch=False)
    expected = snapshot(engine)
    batched = load(engine, database_url, bodies, batch=True)
    assert batched == one_by_one
    got = snapshot(engine)
    for table in TABLES:
        assert got[table.name] == expected[table.name], table.name
    assert expected["dwh_resource_history"]  # something was compared


def test_an_invalid_body_refuses_the_batch_with_the_error_of_its_create(engine, database_url):
    bodies = [lab(0), lab(1) | {"status": "bogus"}, lab(2)]
    with pytest.raises(FhirError) as single:
        load(engine, database_url, bodies, batch=False)
    with pytest.raises(FhirError) as batched:
        load(engine, database_url, bodies, batch=True)
    assert batched.value.status == single.value.status == 400
    assert str(batched.value) == str(single.value)
    assert snapshot(engine)["dwh_data"] == []  # the transaction rolled back


def test_two_patients_sharing_an_identifier_refuse_the_batch(engine, database_url):
    with pytest.raises(FhirError) as refused:
        load(engine, database_url, [patient(1), patient(1)], batch=True)
    assert refused.value.status == 409


def test_a_row_the_table_refuses_raises_the_error_of_an_insert(engine):
    """insert_many (COPY on PostgreSQL) fails as the INSERT it stands for: the grouped
    creates and the Bundle groups catch IntegrityError to fall back one at a time."""
    empty_tables(engine)
    rows = [
        {"table_name": "dwh_data", "row_num": 1, "element": "category", "code": "a\tb\\c"},
        {"table_name": "dwh_data", "row_num": 2, "element": "category", "code": None},
    ]
    with pytest.raises(IntegrityError), engine.begin() as conn:
        insert_many(conn, schema.fhir_token, rows)
    with engine.begin() as conn:
        insert_many(conn, schema.fhir_token, rows[:1])
        stored = conn.execute(select(schema.fhir_token.c.code)).scalars().all()
    assert stored == ["a\tb\\c"]  # tabs and backslashes stored as sent
