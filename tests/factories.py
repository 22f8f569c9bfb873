"""Keyword-only factories writing warehouse rows directly (for tests of other resources)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, select

from codoc_fhir.warehouse import schema

NOW = datetime(2024, 1, 1, tzinfo=UTC)


def _insert(engine: Engine, table: Any, values: dict[str, Any]) -> int:
    values.setdefault("update_date", NOW)
    if "row_version" in table.c:
        values.setdefault("row_version", 1)
    key = next(iter(table.primary_key.columns))
    with engine.begin() as conn:
        return int(conn.execute(table.insert().values(**values).returning(key)).scalar_one())


def count_rows(engine: Engine, *tables: Any) -> int:
    """How many rows the warehouse tables hold, together."""
    with engine.connect() as conn:
        return sum(
            conn.execute(select(func.count()).select_from(table)).scalar_one() for table in tables
        )


# Tables every request writes to (its access-log row, its rate-limit counter).
BOOKKEEPING = ("fhir_access_log", "fhir_rate_limit")


def table_rows(engine: Engine) -> dict[str, int]:
    """The row count of every table but the bookkeeping ones: what a refused request must
    leave unchanged."""
    return {
        table.name: count_rows(engine, table)
        for table in schema.metadata.sorted_tables
        if table.name not in BOOKKEEPING
    }


def make_instance(engine: Engine, *, code: str = "INST1", name: str = "Hospital group") -> int:
    return _insert(engine, schema.hospital_instance, {"code": code, "name": name})


def make_site(
    engine: Engine, *, code: str = "SITE1", name: str = "Main site", instance_id: int | None = None
) -> int:
    return _insert(
        engine,
        schema.dwh_thesaurus_site,
        {"site_code": code, "site_str": name, "instance_id": instance_id},
    )


def make_department(
    engine: Engine,
    *,
    code: str = "CARD",
    name: str = "Cardiology Department",
    site_num: int | None = None,
) -> int:
    return _insert(
        engine,
        schema.dwh_thesaurus_department,
        {"department_code": code, "department_str": name, "site_num": site_num},
    )


def make_unit(
    engine: Engine, *, department_num: int, code: str = "ICU", name: str = "Intensive Care Unit"
) -> int:
    return _insert(
        engine,
        schema.dwh_thesaurus_unit,
        {"unit_code": code, "unit_str": name, "department_num": department_num},
    )


def make_patient(
    engine: Engine,
    *,
    lastname: str = "Smith",
    firstname: str = "John",
    sex: str = "M",
    birth_date: datetime = datetime(1980, 5, 15, tzinfo=UTC),
    ipp: str | None = None,
) -> int:
    num = _insert(
        engine,
        schema.dwh_patient,
        {
            "lastname": lastname,
            "firstname": firstname,
            "sex": sex,
            "birth_date": birth_date,
            "birth_date_precision": "day",
        },
    )
    with engine.begin() as conn:
        conn.execute(
            schema.dwh_patient_ipphist.insert().values(
                patient_num=num,
                hospital_patient_id=ipp or f"IPP{num:06d}",
                origin_patient_id="HIS",
                master_patient_id=True,
                update_date=NOW,
            )
        )
    return num


def make_stay(
    engine: Engine,
    *,
    patient_num: int,
    entry_date: datetime = datetime(2024, 1, 10, 8, 0, tzinfo=UTC),
    out_date: datetime | None = None,
    encounter_num: str | None = None,
) -> int:
    return _insert(
        engine,
        schema.dwh_patient_stay,
        {
            "patient_num": patient_num,
            "entry_date": entry_date,
            "out_date": out_date,
            "encounter_num": encounter_num,
            "status": "finished",
            "class_code": "IMP",
        },
    )


def make_movement(
    engine: Engine,
    *,
    patient_num: int,
    stay_num: int,
    entry_date: datetime = datetime(2024, 1, 10, 9, 0, tzinfo=UTC),
) -> int:
    return _insert(
        engine,
        schema.dwh_patient_mvt,
        {
            "patient_num": patient_num,
            "stay_num": stay_num,
            "entry_date": entry_date,
            "mvt_order": 1,
        },
    )


def make_document(
    engine: Engine,
    *,
    patient_num: int,
    text: str = "<p>Fever and cough</p>",
    document_date: datetime = datetime(2024, 1, 12, 9, 0, tzinfo=UTC),
    stay_num: int | None = None,
) -> int:
    num = _insert(
        engine,
        schema.dwh_document,
        {
            "patient_num": patient_num,
            "displayed_text": text,
            "document_date": document_date,
            "stay_num": stay_num,
            "status": "current",
            "content_type": "text/html",
            "content_bytes": text.encode(),
        },
    )
    with engine.begin() as conn:
        conn.execute(
            schema.dwh_text.insert().values(
                document_num=num, patient_num=patient_num, text=text, update_date=NOW
            )
        )
    return num


def seed_procedure_context(engine: Engine) -> dict[str, int]:
    """Site -> department -> unit, a patient and a stay: what the seed page assumes (ids 1)."""
    site = make_site(engine)
    department = make_department(engine, site_num=site)
    unit = make_unit(engine, department_num=department)
    patient = make_patient(engine)
    stay = make_stay(engine, patient_num=patient)
    return {"site": site, "department": department, "unit": unit, "patient": patient, "stay": stay}
