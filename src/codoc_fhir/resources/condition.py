"""Condition (diagnoses, problems): `dwh_data` rows of the thesaurus THESAURUS_CODE_CONDITION.

The dates go to the fact's date columns: the onset (onsetDateTime, onsetPeriod.start) to
start_date, recordedDate to document_date, the abatement (abatementDateTime,
abatementPeriod.end) to end_date; clinicalStatus to data_status. The warehouse needs a
start date, so a Condition whose onset is not dated (onsetAge, onsetString...) starts at
its recordedDate, and one without recordedDate is taken as recorded at its onset.

Which element each date column came from, and the precision of a date sent without a time,
are kept in extra_json (`dateForms`), so that a read answers the dates in the forms they
were sent; a row loaded by other means than the API has none and answers onsetDateTime,
abatementDateTime and recordedDate.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import RowMapping

from codoc_fhir.fhir.dates import PRECISIONS, as_utc, format_date, format_datetime, parse_datetime
from codoc_fhir.fhir.errors import Required
from codoc_fhir.fhir.validation import check_code, require
from codoc_fhir.resources import values
from codoc_fhir.resources.data_fact import DataFactResource, markers_of
from codoc_fhir.search import declare
from codoc_fhir.warehouse.schema import dwh_data

CLINICAL_SYSTEM = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CLINICAL_STATUS = ("active", "recurrence", "relapse", "inactive", "remission", "resolved")
# The elements a date column is answered in when a row says nothing (rows loaded by SQL).
DEFAULT_FORMS: dict[str, Any] = {
    "onset": "onsetDateTime",
    "abatement": "abatementDateTime",
    "recorded": True,
    "precision": {},
}


class Condition(DataFactResource):
    """A diagnosis or problem of a patient, coded in the condition thesaurus."""

    fhir_type = "Condition"
    label = "Condition"
    codoc_path = "condition"
    thesaurus_setting = "thesaurus_condition"
    search_params = {
        **DataFactResource.search_params,
        "onset-date": declare.date(
            "onset-date",
            dwh_data.c.start_date,
            description="The onset (onsetDateTime, onsetPeriod.start), else the recordedDate",
        ),
        "recorded-date": declare.date(
            "recorded-date",
            dwh_data.c.document_date,
            description="The recordedDate, else the onset",
        ),
        "abatement-date": declare.date("abatement-date", dwh_data.c.end_date),
        "clinical-status": declare.token(
            "clinical-status", dwh_data.c.data_status, system=CLINICAL_SYSTEM
        ),
    }

    def to_values(
        self, conn: Connection, body: dict[str, Any], current: RowMapping | None
    ) -> dict[str, Any]:
        code = require(body, "code")
        dates, forms = date_columns(body)
        row = self.common_values(conn, body, {"dateForms": forms})
        row.update(dates)
        row.update(
            thesaurus_data_num=self.concept_num(conn, code, "code"),
            data_status=clinical_status(body.get("clinicalStatus")),
        )
        return row

    def to_fhir(self, row: RowMapping, related: dict[str, Any]) -> dict[str, Any]:
        forms = date_forms(row)
        resource = self.identity(row)
        if row["data_status"]:
            resource["clinicalStatus"] = {
                "coding": [{"system": CLINICAL_SYSTEM, "code": row["data_status"]}]
            }
        resource["code"] = self.code(row, related)
        resource.update(self.subject_and_encounter(row))
        resource.update(dated("onset", forms, row["start_date"]))
        resource.update(dated("abatement", forms, row["end_date"]))
        if forms["recorded"]:
            precision = forms["precision"].get("recorded")
            resource["recordedDate"] = answer_date(row["document_date"], precision)
        return resource


def date_forms(row: RowMapping) -> dict[str, Any]:
    """The elements (and precisions) the row's dates were sent in; the defaults for rows
    loaded by other means than the API."""
    stored = markers_of(row).get("dateForms")
    forms = {**DEFAULT_FORMS, **stored} if isinstance(stored, dict) else dict(DEFAULT_FORMS)
    if not isinstance(forms["precision"], dict):
        forms["precision"] = {}
    return forms


def parse_date(text: Any, field: str) -> tuple[datetime, str | None]:
    """A FHIR dateTime, and its precision when it is a date alone (`2020`, `2020-03`,
    `2020-03-05`: answered so, not as midnight UTC); None when it has a time."""
    parsed = parse_datetime(text, field)
    return parsed, None if "T" in text else PRECISIONS[text.count("-")]


def onset_date(body: dict[str, Any]) -> tuple[datetime | None, str | None, str]:
    """The onset as a date, its precision, and the element it came from ('' when the onset
    is not dated)."""
    if body.get("onsetDateTime"):
        return *parse_date(body["onsetDateTime"], "onsetDateTime"), "onsetDateTime"
    start = values.get_path(body, ("onsetPeriod", "start"))
    if start:
        return *parse_date(start, "onsetPeriod.start"), "onsetPeriod"
    return None, None, ""


def abatement_date(body: dict[str, Any]) -> tuple[datetime | None, str | None, str]:
    """The abatement as a date, its precision, and the element end_date is answered in:
    '' when an abatement was sent in an undated form (abatementAge, abatementString...);
    abatementDateTime when none was sent, so that an end_date set later shows."""
    if body.get("abatementDateTime"):
        return *parse_date(body["abatementDateTime"], "abatementDateTime"), "abatementDateTime"
    end = values.get_path(body, ("abatementPeriod", "end"))
    if end:
        return *parse_date(end, "abatementPeriod.end"), "abatementPeriod"
    undated = any(name.startswith("abatement") for name in body)
    return None, None, "" if undated else "abatementDateTime"


def date_columns(body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(start_date, document_date, end_date; the forms they came from, for extra_json).

    A fact needs a start date: the onset, else the recordedDate (400 when neither is)."""
    onset, onset_precision, onset_form = onset_date(body)
    recorded, recorded_precision = None, None
    if body.get("recordedDate"):
        recorded, recorded_precision = parse_date(body["recordedDate"], "recordedDate")
    end, end_precision, abatement_form = abatement_date(body)
    start = onset or recorded
    if start is None:
        raise Required(
            "A date is required: onsetDateTime, onsetPeriod.start or recordedDate",
            expression=["onsetDateTime", "recordedDate"],
        )
    precision = {
        "onset": onset_precision if onset else recorded_precision,
        "recorded": recorded_precision if recorded else onset_precision,
        "abatement": end_precision,
    }
    forms = {
        "onset": onset_form,
        "abatement": abatement_form,
        "recorded": recorded is not None,
        "precision": {name: value for name, value in precision.items() if value},
    }
    columns = {"start_date": start, "document_date": recorded or start, "end_date": end}
    return columns, forms


def clinical_status(concept: Any) -> str | None:
    """The clinicalStatus code for data_status: the coding of the FHIR condition-clinical
    system (its code must be one of that system's), else a coding without system whose
    code is one of them; None when there is none (other codings are not a status)."""
    codings = [item for item in (concept or {}).get("coding") or [] if isinstance(item, dict)]
    for position, coding in enumerate(codings):
        if coding.get("system") == CLINICAL_SYSTEM:
            field = f"clinicalStatus.coding[{position}].code"
            return check_code(coding.get("code"), CLINICAL_STATUS, field)
    for coding in codings:
        if not coding.get("system") and coding.get("code") in CLINICAL_STATUS:
            return str(coding["code"])
    return None


def answer_date(value: datetime, precision: str | None) -> str | None:
    """A date column as answered: a date alone at the precision sent, else a dateTime."""
    return format_date(as_utc(value), precision) if precision else format_datetime(value)


def dated(element: str, forms: dict[str, Any], value: datetime | None) -> dict[str, Any]:
    """onset[x] / abatement[x] answered from its date column, in the form it was sent."""
    form = forms[element]
    if value is None or not form:
        return {}
    text = answer_date(value, forms["precision"].get(element))
    if form.endswith("Period"):
        return {form: {"start" if element == "onset" else "end": text}}
    return {form: text}
