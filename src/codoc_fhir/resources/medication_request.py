"""MedicationRequest (prescriptions): `dwh_data` rows of THESAURUS_CODE_MEDICATION.

The first dosage instruction goes to the drug columns of the published model (val_numeric,
data_unit, frequency, period, period_unit, route, daily_details); whatever else the
dosage carries is kept in extra_json and answered around those columns, so a dosage comes
back exactly as it was sent.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import RowMapping

from codoc_fhir.fhir.dates import format_datetime, parse_datetime
from codoc_fhir.fhir.errors import Invalid
from codoc_fhir.fhir.validation import check_code, require
from codoc_fhir.resources import concepts, values
from codoc_fhir.resources.data_fact import DataFactResource, dump_extra
from codoc_fhir.search import declare
from codoc_fhir.warehouse.schema import dwh_data

STATUS = (
    "active",
    "on-hold",
    "cancelled",
    "completed",
    "entered-in-error",
    "stopped",
    "draft",
    "unknown",
)
INTENT = (
    "proposal",
    "plan",
    "order",
    "original-order",
    "reflex-order",
    "filler-order",
    "instance-order",
    "option",
)
PERIOD_UNITS = ("s", "min", "h", "d", "wk", "mo", "a")
KEPT_ELEMENTS = ("category", "note", "reasonCode", "courseOfTherapyType", "substitution")

DOSE: values.Path = (0, "doseAndRate", 0, "doseQuantity")
REPEAT: values.Path = (0, "timing", "repeat")
# dosage columns and where they sit inside dosageInstruction
DOSAGE_PATHS: dict[str, values.Path] = {
    "val_numeric": (*DOSE, "value"),
    "data_unit": (*DOSE, "unit"),
    "unit_system": (*DOSE, "system"),
    "unit_code": (*DOSE, "code"),
    "frequency": (*REPEAT, "frequency"),
    "period": (*REPEAT, "period"),
    "period_unit": (*REPEAT, "periodUnit"),
    "daily_details": (0, "text"),
}


class MedicationRequest(DataFactResource):
    """A prescription of one medication."""

    fhir_type = "MedicationRequest"
    label = "MedicationRequest"
    codoc_path = "medicationrequest"
    thesaurus_setting = "thesaurus_medication"
    search_params = {
        **DataFactResource.search_params,
        "authoredon": declare.date("authoredon", dwh_data.c.start_date),
    }

    def validate(self, body: Any) -> dict[str, Any]:
        """A missing medication is `required` (the R4B model alone would say `invalid`)."""
        if isinstance(body, dict) and body.get("resourceType") == self.fhir_type:
            require(body, "medicationCodeableConcept")
        return super().validate(body)

    def to_values(
        self, conn: Connection, body: dict[str, Any], current: RowMapping | None
    ) -> dict[str, Any]:
        check_code(require(body, "status"), STATUS, "status")
        check_code(require(body, "intent"), INTENT, "intent")
        medication = require(body, "medicationCodeableConcept")
        authored = parse_datetime(require(body, "authoredOn"), "authoredOn")
        row = self.common_values(conn, body)
        row["id_data_source"] = values.fit(
            dwh_data.c.id_data_source, row["id_data_source"], "identifier"
        )
        performer = body.get("performer")
        actors = [(performer, "performer")] if performer else []
        row.update(self.performer_values(conn, actors, ("department", "unit")))
        dosage_columns, dosage_rest = dosage_values(body.get("dosageInstruction") or [])
        row.update(dosage_columns)
        row.update(validity_values(body.get("dispenseRequest") or {}))
        extra = values.kept_elements(body, KEPT_ELEMENTS)
        extra["dosageInstruction"] = dosage_rest
        extra["dispenseRequest"] = values.split(
            body.get("dispenseRequest"), [("validityPeriod", "start"), ("validityPeriod", "end")]
        )
        extra["medication"] = values.code_rest(
            medication, concepts.codesystem_url(self.thesaurus_code)
        )
        row.update(
            thesaurus_data_num=self.concept_num(conn, medication, "medicationCodeableConcept"),
            start_date=authored,
            document_date=authored,
            extra_json=dump_extra(extra),
        )
        return row

    def to_fhir(self, row: RowMapping, related: dict[str, Any]) -> dict[str, Any]:
        extra = values.extra_of(row)
        resource = self.identity(row)
        resource.update(status="unknown", intent="order")
        resource["medicationCodeableConcept"] = values.code_answer(
            self.code(row, related), extra.get("medication")
        )
        resource.update(self.subject_and_encounter(row))
        resource["authoredOn"] = format_datetime(row["start_date"])
        actors = self.performer_actors(row, related)
        if actors:
            resource["performer"] = actors[0][1]
        resource.update(values.kept_elements(extra, KEPT_ELEMENTS))
        dosage = dosage_answer(row, extra.get("dosageInstruction"))
        if dosage:
            resource["dosageInstruction"] = dosage
        dispense = values.overlay(
            extra.get("dispenseRequest"),
            [
                (("validityPeriod", "start"), format_datetime(row["validity_start"])),
                (("validityPeriod", "end"), format_datetime(row["validity_end"])),
            ],
        )
        if dispense:
            resource["dispenseRequest"] = dispense
        return resource


def dosage_values(dosage: list[Any]) -> tuple[dict[str, Any], Any]:
    """(drug columns, the rest of dosageInstruction) for the first dosage instruction."""
    table = dwh_data
    get = values.get_path
    unit = get(dosage, (*REPEAT, "periodUnit"))
    if unit is not None:
        check_code(unit, PERIOD_UNITS, "dosageInstruction[0].timing.repeat.periodUnit")
    columns = {
        "val_numeric": values.number(get(dosage, DOSAGE_PATHS["val_numeric"]), "doseQuantity"),
        "frequency": values.whole_number(
            get(dosage, DOSAGE_PATHS["frequency"]), "dosageInstruction[0].timing.repeat.frequency"
        ),
        "period": values.whole_number(
            get(dosage, DOSAGE_PATHS["period"]), "dosageInstruction[0].timing.repeat.period"
        ),
        "period_unit": unit,
        "route": values.fit(table.c.route, route_label(get(dosage, (0, "route"))), "route"),
    }
    for column in ("data_unit", "unit_system", "unit_code", "daily_details"):
        columns[column] = values.fit(
            table.c[column], get(dosage, DOSAGE_PATHS[column]), f"dosageInstruction.{column}"
        )
    # the route stays whole in the rest: its column is a searchable copy of its label
    return columns, values.split(dosage, list(DOSAGE_PATHS.values())) if dosage else None


def route_label(route: Any) -> str | None:
    """The route column: the route's text, else its first coding's display or code."""
    if not isinstance(route, dict):
        return None
    coding = values.get_path(route, ("coding", 0)) or {}
    label = route.get("text") or coding.get("display") or coding.get("code")
    return str(label) if label is not None else None


def dosage_answer(row: RowMapping, rest: Any) -> Any:
    """dosageInstruction as answered: the kept rest with the drug columns put back."""
    assignments: list[tuple[values.Path, Any]] = [
        (path, row[column]) for column, path in DOSAGE_PATHS.items()
    ]
    assignments[0] = (DOSAGE_PATHS["val_numeric"], values.decimal_out(row["val_numeric"]))
    route = values.get_path(rest, (0, "route"))
    if row["route"] is not None and route_label(route) != row["route"]:
        assignments.append(((0, "route", "text"), row["route"]))
    return values.overlay(rest or [], assignments)


def validity_values(dispense: dict[str, Any]) -> dict[str, Any]:
    """dispenseRequest.validityPeriod -> validity_start / validity_end (end >= start)."""
    period = dispense.get("validityPeriod") or {}
    start = period.get("start")
    end = period.get("end")
    found = {
        "validity_start": parse_datetime(start, "dispenseRequest.validityPeriod.start")
        if start
        else None,
        "validity_end": parse_datetime(end, "dispenseRequest.validityPeriod.end") if end else None,
    }
    start_at, end_at = found["validity_start"], found["validity_end"]
    if start_at and end_at and end_at < start_at:
        raise Invalid(
            "dispenseRequest.validityPeriod.end is before its start",
            expression=["dispenseRequest.validityPeriod"],
        )
    return found
