"""Procedure (medical acts): `dwh_data` rows of the thesaurus THESAURUS_CODE_PROCEDURE.

performedDateTime / performedPeriod -> start_date (and end_date), the form in extra_json;
the first department and unit performers -> department_num / unit_num. Every other element
(other performers, reasons, notes, basedOn, partOf...) is kept with the row (fhir_kept).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import RowMapping

from codoc_fhir.fhir.validation import check_code, require
from codoc_fhir.resources.data_fact import (
    DataFactResource,
    date_answer,
    date_marker,
    date_values,
    event_date,
    markers_of,
    performer_function,
)
from codoc_fhir.search import declare
from codoc_fhir.warehouse.schema import dwh_data

EVENT_STATUS = (
    "preparation",
    "in-progress",
    "not-done",
    "on-hold",
    "stopped",
    "completed",
    "entered-in-error",
    "unknown",
)


class Procedure(DataFactResource):
    fhir_type = "Procedure"
    label = "Procedure"
    codoc_path = "procedure"
    thesaurus_setting = "thesaurus_procedure"
    search_params = {
        **DataFactResource.search_params,
        "date": declare.date("date", dwh_data.c.start_date),
        "performer": declare.data_fact_performer(),
    }

    def to_values(
        self, conn: Connection, body: dict[str, Any], current: RowMapping | None
    ) -> dict[str, Any]:
        check_code(require(body, "status"), EVENT_STATUS, "status")
        performed = event_date(body, "performed")
        # the form the date was sent in: to_fhir answers that form
        row = self.common_values(conn, body, {"dateForm": date_marker(performed)})
        actors = [
            (performer.get("actor"), f"performer[{position}].actor")
            for position, performer in enumerate(body.get("performer") or [])
        ]
        row.update(self.performer_values(conn, actors, ("department", "unit")))
        row.update(date_values(performed))
        row.update(
            thesaurus_data_num=self.concept_num(conn, require(body, "code"), "code"),
        )
        return row

    def to_fhir(self, row: RowMapping, related: dict[str, Any]) -> dict[str, Any]:
        resource = self.identity(row)
        resource["status"] = "unknown"
        resource["code"] = self.code(row, related)
        resource.update(self.subject_and_encounter(row))
        resource.update(date_answer(row, "performed", markers_of(row).get("dateForm")))
        performers = [
            {"function": performer_function(level), "actor": actor}
            for level, actor in self.performer_actors(row, related)
        ]
        if performers:
            resource["performer"] = performers
        return resource
