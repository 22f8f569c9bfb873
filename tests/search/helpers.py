"""Warehouse rows for search tests, written directly (fast, no dependency on create)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select

from codoc_fhir.warehouse import schema
from codoc_fhir.warehouse.db import write_transaction

NOW = datetime(2024, 1, 1, tzinfo=UTC)


def concept(engine: Engine, thesaurus: str, code: str, label: str | None = None) -> int:
    """The thesaurus_data_num of (thesaurus, code), creating both on first use."""
    with write_transaction(engine) as conn:
        if (
            conn.execute(
                select(schema.dwh_thesaurus.c.thesaurus_num).where(
                    schema.dwh_thesaurus.c.thesaurus_code == thesaurus
                )
            ).first()
            is None
        ):
            conn.execute(
                schema.dwh_thesaurus.insert().values(
                    thesaurus_code=thesaurus, name=thesaurus, label=thesaurus, update_date=NOW
                )
            )
        table = schema.dwh_thesaurus_data
        found = conn.execute(
            select(table.c.thesaurus_data_num).where(
                table.c.thesaurus_code == thesaurus, table.c.concept_code == code
            )
        ).scalar()
        if found is not None:
            return int(found)
        return int(
            conn.execute(
                table.insert()
                .values(
                    thesaurus_code=thesaurus,
                    concept_code=code,
                    concept_str=label or code,
                    update_date=NOW,
                )
                .returning(table.c.thesaurus_data_num)
            ).scalar_one()
        )


def fact(
    engine: Engine,
    *,
    patient_num: int,
    when: datetime,
    code: str = "COLO001",
    thesaurus: str = "Acte",
    stay_num: int | None = None,
    department_num: int | None = None,
    unit_num: int | None = None,
    id_source: str | None = None,
    **values: Any,
) -> int:
    """A dwh_data row (a Procedure with the default thesaurus)."""
    concept_num = concept(engine, thesaurus, code)
    row = {
        "patient_num": patient_num,
        "thesaurus_data_num": concept_num,
        "thesaurus_code": thesaurus,
        "document_date": when,
        "start_date": when,
        "stay_num": stay_num,
        "department_num": department_num,
        "unit_num": unit_num,
        "id_data_source": id_source,
        "update_date": values.pop("update_date", NOW),
        "row_version": 1,
        **values,
    }
    with engine.begin() as conn:
        return int(
            conn.execute(
                schema.dwh_data.insert().values(**row).returning(schema.dwh_data.c.data_num)
            ).scalar_one()
        )


def at(text: str) -> datetime:
    """An aware UTC datetime from ISO text."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def ids(bundle: dict[str, Any], mode: str = "match") -> list[str]:
    """The ids of the entries of `bundle` with search mode `mode`, in order."""
    return [
        entry["resource"]["id"]
        for entry in bundle.get("entry", [])
        if entry["search"]["mode"] == mode
    ]


def link(bundle: dict[str, Any], relation: str) -> str | None:
    for item in bundle.get("link", []):
        if item["relation"] == relation:
            return item["url"]
    return None
