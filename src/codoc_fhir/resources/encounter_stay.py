"""Encounter stays: `dwh_patient_stay` rows, Encounters without `partOf` (id `N`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import RowMapping

from codoc_fhir.fhir.errors import Conflict, Invalid
from codoc_fhir.resources import concepts
from codoc_fhir.resources.base import Referrer, count_referrers
from codoc_fhir.resources.encounter import EncounterKind
from codoc_fhir.search import catalog
from codoc_fhir.warehouse.schema import (
    dwh_document,
    dwh_patient_data,
    dwh_patient_mvt,
    dwh_patient_stay,
)

# Encounter.class -> dwh_patient_stay.type_dos (the published model's visit types)
STAY_TYPES = {"IMP": "Hospitalisation", "AMB": "Ambulatoire", "EMER": "Urgence", "HH": "HAD"}


class EncounterStay(EncounterKind):
    label = "Stay"
    table = dwh_patient_stay
    codoc_path = "encounter/stay"
    id_prefix = ""
    identifier_column = "encounter_num"
    entry_mode_column = "entry_mode"
    exit_mode_column = "out_mode"
    type_column = "type_dos"
    type_values = STAY_TYPES
    search_params = catalog.encounter_params(dwh_patient_stay, "encounter_num", movement=False)

    def accepts_create(self, body: dict[str, Any]) -> bool:
        return body.get("partOf") is None

    def to_values(
        self, conn: Connection, body: dict[str, Any], current: RowMapping | None
    ) -> dict[str, Any]:
        if body.get("partOf") is not None:
            raise Invalid(
                "A stay has no partOf: an Encounter with partOf is a movement "
                "(a stay cannot become a movement)",
                expression=["Encounter.partOf"],
            )
        values = self.common_values(conn, body, current)
        if current is not None and current["patient_num"] != values["patient_num"]:
            self.check_subject_change(conn, current["stay_num"])
        values["encounter_num"] = self.usual_identifier(conn, body, values["patient_num"], current)
        return values

    def check_subject_change(self, conn: Connection, num: int) -> None:
        """A stay that movements, facts or documents point at keeps its patient."""
        blockers = count_referrers(conn, self.referrers(), num)
        if blockers:
            raise Conflict(
                f"Stay {num} cannot change patient: it is referenced by {blockers}",
                expression=["Encounter.subject"],
            )

    def referrers(self) -> Sequence[Referrer]:
        return (
            Referrer(dwh_patient_mvt, "stay_num", "Movement"),
            concepts.fact_referrer(self.settings, "stay_num"),
            Referrer(dwh_document, "stay_num", "DocumentReference"),
            Referrer(dwh_patient_data, "stay_num", "Observation"),
        )

    def to_fhir(self, row: RowMapping, related: dict[str, Any]) -> dict[str, Any]:
        return self.common_fhir(row, related)
