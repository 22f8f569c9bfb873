"""Patient to FHIR: names and death answered from the dwh_patient columns (pure)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import RowMapping

from codoc_fhir.fhir.dates import (
    format_datetime,
)
from codoc_fhir.resources.patient.search_params import (
    DEATH_CODE,
)


def answer_names(row: RowMapping) -> list[dict[str, Any]]:
    names: list[dict[str, Any]] = []
    if row["lastname"] or row["firstname"]:
        name: dict[str, Any] = {}
        if row["lastname"]:
            name["family"] = row["lastname"]
        if row["firstname"]:
            name["given"] = [row["firstname"]]
        names.append(name)
    if row["maiden_name"]:
        names.append({"use": "maiden", "family": row["maiden_name"]})
    return names


def answer_death(row: RowMapping) -> dict[str, Any]:
    if row["death_date"] is not None:
        return {"deceasedDateTime": format_datetime(row["death_date"])}
    if row["death_code"] == DEATH_CODE:
        return {"deceasedBoolean": True}
    return {}
