"""DiagnosticReport: `dwh_data` rows of the thesaurus THESAURUS_CODE_DIAGNOSTIC.

effectiveDateTime -> start_date, issued -> issued_date, conclusion -> val_text,
performer[] -> department_num / unit_num (one of each at most).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import RowMapping

from codoc_fhir.fhir.dates import format_datetime, parse_datetime
from codoc_fhir.fhir.validation import check_code, require
from codoc_fhir.resources import concepts, values
from codoc_fhir.resources.data_fact import DataFactResource, dump_extra
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
KEPT_ELEMENTS = ("category", "conclusionCode")


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
        effective = parse_datetime(require(body, "effectiveDateTime"), "effectiveDateTime")
        issued = body.get("issued")
        row = self.common_values(conn, body)
        row["id_data_source"] = values.fit(
            dwh_data.c.id_data_source, row["id_data_source"], "identifier"
        )
        actors = [
            (performer, f"performer[{position}]")
            for position, performer in enumerate(body.get("performer") or [])
        ]
        row.update(self.performer_values(conn, actors, ("department", "unit")))
        extra = values.kept_elements(body, KEPT_ELEMENTS)
        extra["code"] = values.code_rest(code, concepts.codesystem_url(self.thesaurus_code))
        row.update(
            thesaurus_data_num=self.concept_num(conn, code, "code"),
            start_date=effective,
            document_date=effective,
            issued_date=parse_datetime(issued, "issued") if issued else None,
            val_text=values.fit(dwh_data.c.val_text, body.get("conclusion"), "conclusion"),
            extra_json=dump_extra(extra),
        )
        return row

    def to_fhir(self, row: RowMapping, related: dict[str, Any]) -> dict[str, Any]:
        extra = values.extra_of(row)
        resource = self.identity(row)
        resource["status"] = "unknown"
        if "category" in extra:
            resource["category"] = extra["category"]
        resource["code"] = values.code_answer(self.code(row, related), extra.get("code"))
        resource.update(self.subject_and_encounter(row))
        resource["effectiveDateTime"] = format_datetime(row["start_date"])
        if row["issued_date"] is not None:
            resource["issued"] = format_datetime(row["issued_date"])
        performers = [actor for _level, actor in self.performer_actors(row, related)]
        if performers:
            resource["performer"] = performers
        if row["val_text"] is not None:
            resource["conclusion"] = row["val_text"]
        if "conclusionCode" in extra:
            resource["conclusionCode"] = extra["conclusionCode"]
        return resource
