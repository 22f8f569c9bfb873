"""Procedure (medical acts): `dwh_data` rows of the thesaurus THESAURUS_CODE_PROCEDURE."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import RowMapping

from codoc_fhir.fhir.dates import format_datetime, parse_datetime
from codoc_fhir.fhir.validation import check_code, require
from codoc_fhir.resources.data_fact import DataFactResource, performer_function
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
        performed = parse_datetime(require(body, "performedDateTime"), "performedDateTime")
        values = self.common_values(conn, body)
        actors = [
            (performer.get("actor"), f"performer[{position}].actor")
            for position, performer in enumerate(body.get("performer") or [])
        ]
        values.update(self.performer_values(conn, actors, ("department", "unit")))
        values.update(
            thesaurus_data_num=self.concept_num(conn, require(body, "code"), "code"),
            start_date=performed,
            document_date=performed,
        )
        return values

    def to_fhir(self, row: RowMapping, related: dict[str, Any]) -> dict[str, Any]:
        resource = self.identity(row)
        resource["status"] = "unknown"
        resource["code"] = self.code(row, related)
        resource.update(self.subject_and_encounter(row))
        resource["performedDateTime"] = format_datetime(row["start_date"])
        performers = [
            {"function": performer_function(level), "actor": actor}
            for level, actor in self.performer_actors(row, related)
        ]
        if performers:
            resource["performer"] = performers
        return resource
