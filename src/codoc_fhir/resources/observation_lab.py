"""Observation (lab results): `dwh_data` rows of the thesaurus THESAURUS_CODE_OBSERVATION.

The value goes to the value columns (see values.py), the status to data_status, the date
in any effective[x] form to start_date (and end_date). Elements with no column (category,
interpretation, note, component, codings beside the thesaurus one...) are kept with the
row (fhir_kept) and answered as sent; the kept codings are searchable by `code`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import RowMapping

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
        effective = event_date(body, "effective")
        code = require(body, "code")
        value_columns, markers = values.value_columns(dwh_data, body)
        markers["dateForm"] = date_marker(effective)
        row = self.common_values(conn, body, markers)
        row["id_data_source"] = values.fit(
            dwh_data.c.id_data_source, row["id_data_source"], "identifier"
        )
        row.update(value_columns)
        row.update(date_values(effective))
        row.update(thesaurus_data_num=self.concept_num(conn, code, "code"), data_status=status)
        return row

    def to_fhir(self, row: RowMapping, related: dict[str, Any]) -> dict[str, Any]:
        markers = markers_of(row)
        resource = self.identity(row)
        resource["status"] = row["data_status"] or "final"
        resource["code"] = self.code(row, related)
        resource.update(self.subject_and_encounter(row))
        resource.update(date_answer(row, "effective", markers.get("dateForm")))
        resource.update(values.value_answer(row, markers))
        return resource
