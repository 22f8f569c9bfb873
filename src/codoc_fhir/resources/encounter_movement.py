"""Encounter movements: `dwh_patient_mvt` rows, Encounters whose `partOf` is their stay.

FHIR id `movement-N`. The stay must exist, belong to the same patient, and the movement
must begin during the stay (as known when the movement is written).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.engine import RowMapping

from codoc_fhir.fhir.dates import as_utc, format_datetime
from codoc_fhir.fhir.errors import Invalid, Required
from codoc_fhir.fhir.references import reference_dict
from codoc_fhir.resources import links
from codoc_fhir.resources.encounter import EncounterKind
from codoc_fhir.search import catalog
from codoc_fhir.warehouse.schema import dwh_patient_mvt, dwh_patient_stay, dwh_thesaurus_unit

# Encounter.class -> dwh_patient_mvt.type_mvt (the published model's one-letter types)
MOVEMENT_TYPES = {"IMP": "H", "AMB": "A", "EMER": "U", "HH": "HAD"}


class EncounterMovement(EncounterKind):
    label = "Movement"
    table = dwh_patient_mvt
    codoc_path = "encounter/movement"
    id_prefix = "movement-"
    identifier_column = "id_mvt_source"
    children_change_row = True  # write_children renumbers mvt_order, this row's too
    search_params = catalog.encounter_params(dwh_patient_mvt, "id_mvt_source", movement=True)
    entry_mode_column = "mvt_entry_mode"
    exit_mode_column = "mvt_exit_mode"
    type_column = "type_mvt"
    type_values = MOVEMENT_TYPES

    def accepts_create(self, body: dict[str, Any]) -> bool:
        return body.get("partOf") is not None

    def to_values(
        self, conn: Connection, body: dict[str, Any], current: RowMapping | None
    ) -> dict[str, Any]:
        if body.get("partOf") is None:
            raise Required(
                "Field 'partOf' is required: a movement belongs to a stay",
                expression=["Encounter.partOf"],
            )
        values = self.common_values(conn, body, current)
        stay = links.stay_num(conn, body["partOf"], "partOf", values["patient_num"])
        check_inside_stay(conn, stay, values["entry_date"])
        values["stay_num"] = stay
        values.update(self.department_and_unit(conn, values))
        values["id_mvt_source"] = self.usual_identifier(conn, body, values["patient_num"], current)
        return values

    def department_and_unit(self, conn: Connection, values: dict[str, Any]) -> dict[str, Any]:
        """department_num / unit_num of the published model, from the serviceProvider."""
        level, num = values["service_org_level"], values["service_org_num"]
        if level == "department":
            return {"department_num": num, "unit_num": None}
        if level == "unit":
            department = conn.execute(
                select(dwh_thesaurus_unit.c.department_num).where(
                    dwh_thesaurus_unit.c.unit_num == num
                )
            ).scalar()
            return {"department_num": department, "unit_num": num}
        return {"department_num": None, "unit_num": None}

    def write_children(self, conn: Connection, num: int, body: dict[str, Any]) -> None:
        """Renumber mvt_order (the movement's rank by entry date) within its stay."""
        stay = conn.execute(
            select(dwh_patient_mvt.c.stay_num).where(dwh_patient_mvt.c.mvt_num == num)
        ).scalar_one()
        renumber_movements(conn, stay)

    def to_fhir(self, row: RowMapping, related: dict[str, Any]) -> dict[str, Any]:
        resource = self.common_fhir(row, related)
        resource["partOf"] = reference_dict("Encounter", row["stay_num"])
        return resource


def check_inside_stay(conn: Connection, stay: int, start: datetime | None) -> None:
    """A movement begins during its stay: not before admission, not after discharge (a
    movement or a stay without dates is not checked)."""
    row = conn.execute(
        select(dwh_patient_stay.c.entry_date, dwh_patient_stay.c.out_date).where(
            dwh_patient_stay.c.stay_num == stay
        )
    ).one()
    if start is None or row.entry_date is None:
        return
    entry = as_utc(row.entry_date)
    out = as_utc(row.out_date) if row.out_date is not None else None
    if start < entry or (out is not None and start > out):
        window = f"{format_datetime(entry)} - {format_datetime(out) if out else 'open'}"
        raise Invalid(
            f"The movement starts outside its stay {stay} ({window})",
            expression=["Encounter.period.start"],
        )


def renumber_movements(conn: Connection, stay: int) -> None:
    """Set mvt_order 1, 2, ... by entry date for the movements of a stay."""
    table = dwh_patient_mvt
    rows = conn.execute(
        select(table.c.mvt_num, table.c.mvt_order)
        .where(table.c.stay_num == stay)
        .order_by(table.c.entry_date, table.c.mvt_num)
    ).all()
    for rank, row in enumerate(rows, start=1):
        if row.mvt_order != rank:
            conn.execute(
                table.update().where(table.c.mvt_num == row.mvt_num).values(mvt_order=rank)
            )
