"""Observation (lab results): `dwh_data` rows of the thesaurus THESAURUS_CODE_OBSERVATION.

The value goes to the value columns (see values.py), the status to data_status; elements
with no column (category, interpretation, note...) are kept in extra_json and answered
as sent.
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

# elements with no warehouse column, stored in extra_json and answered unchanged
KEPT_ELEMENTS = (
    "category",
    "interpretation",
    "note",
    "method",
    "bodySite",
    "issued",
    "dataAbsentReason",
)


class LabObservation(DataFactResource):
    """A lab result; the default kind of Observation on POST."""

    fhir_type = "Observation"
    label = "Observation"
    codoc_path = "observation"
    thesaurus_setting = "thesaurus_observation"
    search_params = {
        **DataFactResource.search_params,
        "date": declare.date("date", dwh_data.c.start_date),
        "value-quantity": declare.quantity(
            "value-quantity",
            dwh_data.c.val_numeric,
            system=dwh_data.c.unit_system,
            code=dwh_data.c.unit_code,
            unit=dwh_data.c.data_unit,
        ),
    }

    def to_values(
        self, conn: Connection, body: dict[str, Any], current: RowMapping | None
    ) -> dict[str, Any]:
        status = check_code(require(body, "status"), values.OBSERVATION_STATUS, "status")
        effective = parse_datetime(require(body, "effectiveDateTime"), "effectiveDateTime")
        code = require(body, "code")
        row = self.common_values(conn, body)
        row["id_data_source"] = values.fit(
            dwh_data.c.id_data_source, row["id_data_source"], "identifier"
        )
        value_columns, extra = values.value_columns(dwh_data, body)
        extra.update(values.kept_elements(body, KEPT_ELEMENTS))
        extra["code"] = values.code_rest(code, concepts.codesystem_url(self.thesaurus_code))
        row.update(value_columns)
        row.update(
            thesaurus_data_num=self.concept_num(conn, code, "code"),
            data_status=status,
            start_date=effective,
            document_date=effective,
            extra_json=dump_extra(extra),
        )
        return row

    def to_fhir(self, row: RowMapping, related: dict[str, Any]) -> dict[str, Any]:
        extra = values.extra_of(row)
        resource = self.identity(row)
        resource["status"] = row["data_status"] or "final"
        if "category" in extra:
            resource["category"] = extra["category"]
        resource["code"] = values.code_answer(self.code(row, related), extra.get("code"))
        resource.update(self.subject_and_encounter(row))
        resource["effectiveDateTime"] = format_datetime(row["start_date"])
        resource.update(values.kept_elements(extra, KEPT_ELEMENTS[1:]))
        resource.update(values.value_answer(row, extra))
        return resource
