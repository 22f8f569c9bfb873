"""DiagnosticReport: `dwh_data` rows of the thesaurus THESAURUS_CODE_DIAGNOSTIC.

effective[x] -> start_date (and end_date), issued -> issued_date, conclusion -> val_text,
the first department and unit performers -> department_num / unit_num. Every other element
(category, result, conclusionCode, other performers...) is kept with the row (fhir_kept)
and answered as sent: a `result` naming an Observation that does not exist is stored as
sent, never checked.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import RowMapping

from codoc_fhir.fhir.dates import format_datetime, parse_datetime
from codoc_fhir.fhir.validation import check_code, require
from codoc_fhir.resources import values
from codoc_fhir.resources.data_fact import (
    DataFactResource,
    date_answer,
    date_marker,
    date_values,
    event_date,
    markers_of,
)
from codoc_fhir.search import declare
from codoc_fhir.warehouse.schema import dwh_data

STATUS = (
    "registered",
    "partial",
    "preliminary",
    "final",
    "amended",
    "corrected",
    "appended",
    "cancelled",
    "entered-in-error",
    "unknown",
)


class DiagnosticReport(DataFactResource):
    """A diagnostic examination report and its conclusion."""

    fhir_type = "DiagnosticReport"
    label = "DiagnosticReport"
    codoc_path = "diagnosticreport"
    thesaurus_setting = "thesaurus_diagnostic"
    search_params = {
        **DataFactResource.search_params,
        "date": declare.date("date", dwh_data.c.start_date),
        "performer": declare.data_fact_performer(),
    }

    def to_values(
        self, conn: Connection, body: dict[str, Any], current: RowMapping | None
    ) -> dict[str, Any]:
        check_code(require(body, "status"), STATUS, "status")
        code = require(body, "code")
        effective = event_date(body, "effective")
        issued = body.get("issued")
        row = self.common_values(conn, body, {"dateForm": date_marker(effective)})
        row["id_data_source"] = values.fit(
            dwh_data.c.id_data_source, row["id_data_source"], "identifier"
        )
        actors = [
            (performer, f"performer[{position}]")
            for position, performer in enumerate(body.get("performer") or [])
        ]
        row.update(self.performer_values(conn, actors, ("department", "unit")))
        row.update(date_values(effective))
        row.update(
            thesaurus_data_num=self.concept_num(conn, code, "code"),
            issued_date=parse_datetime(issued, "issued") if issued else None,
            val_text=values.fit(dwh_data.c.val_text, body.get("conclusion"), "conclusion"),
        )
        return row

    def to_fhir(self, row: RowMapping, related: dict[str, Any]) -> dict[str, Any]:
        resource = self.identity(row)
        resource["status"] = "unknown"
        resource["code"] = self.code(row, related)
        resource.update(self.subject_and_encounter(row))
        resource.update(date_answer(row, "effective", markers_of(row).get("dateForm")))
        if row["issued_date"] is not None:
            resource["issued"] = format_datetime(row["issued_date"])
        performers = [actor for _level, actor in self.performer_actors(row, related)]
        if performers:
            resource["performer"] = performers
        if row["val_text"] is not None:
            resource["conclusion"] = row["val_text"]
        return resource
