"""MedicationRequest (prescriptions): `dwh_data` rows of THESAURUS_CODE_MEDICATION.

The first dosage instruction goes to the drug columns of the published model (val_numeric,
data_unit, frequency, period, period_unit, route, daily_details); whatever else the
dosage carries is kept with the row (fhir_kept) and merged around those columns, so a
dosage comes back exactly as it was sent. The medication is a concept of the thesaurus: from
medicationCodeableConcept's first coding, or its text when it has no coding, or from
medicationReference (its display, else the reference), the form sent marked in extra_json.
Every other element (requester, other codings, notes, reasons...) is kept with the row
(fhir_kept) and answered as sent.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import RowMapping

from codoc_fhir.fhir.dates import format_datetime, parse_datetime
from codoc_fhir.fhir.errors import Invalid, Required
from codoc_fhir.fhir.validation import check_code, require
from codoc_fhir.resources import values
from codoc_fhir.resources.data_fact import DataFactResource, markers_of
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
    concept_element = "medicationCodeableConcept"
    search_params = {
        **DataFactResource.search_params,
        # its codes are the medication's: kept codings of medicationCodeableConcept count
        "code": declare.on_element(
            DataFactResource.search_params["code"], "medicationCodeableConcept"
        ),
        "authoredon": declare.date("authoredon", dwh_data.c.start_date),
    }

    def validate(self, body: Any) -> dict[str, Any]:
        """A missing medication is `required` (the R4B model alone would say `invalid`)."""
        if (
            isinstance(body, dict)
            and body.get("resourceType") == self.fhir_type
            and body.get("medicationReference") is None
        ):
            require(body, "medicationCodeableConcept")
        return super().validate(body)

    def to_values(
        self, conn: Connection, body: dict[str, Any], current: RowMapping | None
    ) -> dict[str, Any]:
        check_code(require(body, "status"), STATUS, "status")
        check_code(require(body, "intent"), INTENT, "intent")
        medication, form = medication_concept(body)
        authored = parse_datetime(require(body, "authoredOn"), "authoredOn")
        dosage = body.get("dosageInstruction") or []
        markers = {
            "medication": form,
            "routeLabel": route_source(values.get_path(dosage, (0, "route"))),
        }
        row = self.common_values(conn, body, markers)
        row["id_data_source"] = values.fit(
            dwh_data.c.id_data_source, row["id_data_source"], "identifier"
        )
        performer = body.get("performer")
        actors = [(performer, "performer")] if performer else []
        row.update(self.performer_values(conn, actors, ("department", "unit")))
        row.update(dosage_values(dosage))
        row.update(validity_values(body.get("dispenseRequest") or {}))
        row.update(
            thesaurus_data_num=self.concept_num(conn, medication, "medicationCodeableConcept"),
            start_date=authored,
            document_date=authored,
        )
        return row

    def to_fhir(self, row: RowMapping, related: dict[str, Any]) -> dict[str, Any]:
        extra = markers_of(row)
        resource = self.identity(row)
        resource.update(status="unknown", intent="order")
        if extra.get("medication") != "reference":  # else medicationReference is kept
            resource["medicationCodeableConcept"] = self.code(row, related)
        resource.update(self.subject_and_encounter(row))
        resource["authoredOn"] = format_datetime(row["start_date"])
        actors = self.performer_actors(row, related)
        if actors:
            resource["performer"] = actors[0][1]
        dosage = dosage_answer(row, extra.get("routeLabel"))
        if dosage:
            resource["dosageInstruction"] = [dosage]
        validity = {
            "start": format_datetime(row["validity_start"]),
            "end": format_datetime(row["validity_end"]),
        }
        if any(validity.values()):
            period = {name: value for name, value in validity.items() if value}
            resource["dispenseRequest"] = {"validityPeriod": period}
        return resource


def medication_concept(body: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """(the CodeableConcept the thesaurus concept comes from, the form marker): the
    medicationCodeableConcept (made from its text when it has no coded coding), or one made
    from medicationReference (marker `reference`: the reference is kept and answered)."""
    concept = body.get("medicationCodeableConcept")
    if concept is not None:
        return concept, None  # concept_num makes one from a text-only concept
    reference = body["medicationReference"]
    label = reference.get("display") or reference.get("reference")
    if not label:
        raise Required(
            "Field 'medicationReference.reference' (or its display) is required",
            expression=["medicationReference"],
        )
    return {"text": label}, "reference"  # concept_num makes the concept from the label


def dosage_values(dosage: list[Any]) -> dict[str, Any]:
    """The drug columns of the first dosage instruction."""
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
    return columns


def route_label(route: Any) -> str | None:
    """The route column: the route's text, else its first coding's display or code."""
    source = route_source(route)
    if source is None:
        return None
    label = route[source] if source == "text" else values.get_path(route, ("coding", 0, source))
    return str(label) if label is not None else None


def route_source(route: Any) -> str | None:
    """Where the route's label comes from: `text`, else coding[0] `display` or `code`."""
    if not isinstance(route, dict):
        return None
    if route.get("text"):
        return "text"
    coding = values.get_path(route, ("coding", 0)) or {}
    return next((member for member in ("display", "code") if coding.get(member)), None)


def dosage_answer(row: RowMapping, route_from: str | None) -> dict[str, Any]:
    """The first dosage instruction as the drug columns give it (the kept dosage completes
    it); the route label goes back where it came from (`route_from`)."""
    dosage: dict[str, Any] = {}
    for column, path in DOSAGE_PATHS.items():
        value = values.decimal_out(row[column]) if column == "val_numeric" else row[column]
        if value is not None:
            values.put_path(dosage, path[1:], value)
    if row["route"] is not None:
        where: values.Path = (
            ("text",) if route_from in (None, "text") else ("coding", 0, route_from or "")
        )
        values.put_path(dosage, ("route", *where), row["route"])
    return dosage


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
