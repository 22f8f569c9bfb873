"""Encounter: what stays (`dwh_patient_stay`) and movements (`dwh_patient_mvt`) share.

A stay is an Encounter without `partOf` (FHIR id `N`); a movement is an Encounter whose
`partOf` names its stay (FHIR id `movement-N`). The two kinds live in encounter_stay.py and
encounter_movement.py; this module holds the mapping they have in common: status, class,
subject, period, serviceProvider, the usual identifier and the admission/discharge modes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import Connection, select
from sqlalchemy.engine import RowMapping

from codoc_fhir.config import Settings
from codoc_fhir.fhir import identifiers
from codoc_fhir.fhir.dates import format_datetime, parse_datetime
from codoc_fhir.fhir.errors import Duplicate, Invalid, Required
from codoc_fhir.fhir.references import reference_dict
from codoc_fhir.fhir.validation import check_code, check_length, require
from codoc_fhir.resources import links
from codoc_fhir.resources.base import Resource

# Encounter.status of R4B (CONTRACT 4 names the first four; 9: every valid value is stored).
STATUSES = (
    "planned",
    "in-progress",
    "finished",
    "cancelled",
    "arrived",
    "triaged",
    "onleave",
    "entered-in-error",
    "unknown",
)
ACT_CODE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
CLASS_DISPLAYS = {
    "IMP": "inpatient encounter",
    "AMB": "ambulatory",
    "EMER": "emergency",
    "HH": "home health",
}
MODE_LENGTH = 500  # entry_mode / out_mode columns
IDENTIFIER_LENGTH = 300  # encounter_num / id_mvt_source
CLASS_CODE_LENGTH = 10  # dwh_patient_stay.class_code, dwh_patient_mvt.class_code
_FHIR_CODE = re.compile(r"^[^\s]+(\s[^\s]+)*$")


def class_code(value: Any) -> str:
    """Encounter.class (a Coding) -> the class_code column: the code as sent (IMP, AMB,
    EMER, HH, or any other class code; the Coding itself is kept with the row)."""
    if not isinstance(value, dict) or not value.get("code"):
        raise Required("Field 'class.code' is required", expression=["class.code"])
    return check_length(str(value["code"]), CLASS_CODE_LENGTH, "class.code")


def known_class(value: Any) -> str | None:
    """The class code when it is one the warehouse types (IMP, AMB, EMER, HH, the codes of
    v3-ActCode, whatever system was sent: they are answered with v3-ActCode), else None."""
    code = value.get("code")
    return str(code) if code in CLASS_DISPLAYS else None


def class_coding(code: str) -> dict[str, str]:
    return {"system": ACT_CODE_SYSTEM, "code": code, "display": CLASS_DISPLAYS[code]}


def parse_period(body: dict[str, Any]) -> tuple[datetime | None, datetime | None]:
    """period.start and period.end, which may not come before the start. Both may be
    missing: an encounter planned, or exported without its dates (the R4B examples), is
    stored with an empty entry date rather than refused (CONTRACT section 9)."""
    period = body.get("period") or {}
    sent_start, sent_end = period.get("start"), period.get("end")
    start = parse_datetime(sent_start, "period.start") if sent_start else None
    end = parse_datetime(sent_end, "period.end") if sent_end else None
    if start is not None and end is not None and end < start:
        raise Invalid(
            "period.end must not be before period.start", expression=["Encounter.period.end"]
        )
    return start, end


def mode_code(concept: Any, field: str) -> str | None:
    """The first coding's code of hospitalization.admitSource / dischargeDisposition, for
    the entry / exit mode column; None when there is none that fits (a concept with only
    a text, or a longer code): the concept is kept with the row and answered as sent."""
    if concept is None:
        return None
    codings = concept.get("coding") or []
    code = codings[0].get("code") if codings else None
    if not code or len(str(code)) > MODE_LENGTH:
        return None
    return str(code)


def mode_concept(value: str) -> dict[str, Any]:
    """A stored mode answered as a coding (or as text when it is not a valid FHIR code)."""
    return {"coding": [{"code": value}]} if _FHIR_CODE.match(value) else {"text": value}


def service_provider(conn: Connection, value: Any) -> tuple[str | None, int | None]:
    """(level, number) of a serviceProvider of the hospital tree (a bare `Organization/N`
    names unit N); (None, None) for none or any other Organization (kept as sent)."""
    found = links.warehouse_organization(conn, value, "serviceProvider")
    if found is None:
        return None, None
    level, num = found
    return level.name, num


class EncounterKind(Resource):
    """One table of Encounters (stays or movements); subclasses name their columns."""

    fhir_type = "Encounter"
    identifier_column: ClassVar[str]
    entry_mode_column: ClassVar[str]
    exit_mode_column: ClassVar[str]
    type_column: ClassVar[str]
    type_values: ClassVar[dict[str, str]]  # class code -> Codoc visit type

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    # --- input -------------------------------------------------------------------------

    def common_values(
        self, conn: Connection, body: dict[str, Any], current: RowMapping | None
    ) -> dict[str, Any]:
        """Column values of the fields stays and movements share (not the identifier)."""
        status = check_code(require(body, "status"), STATUSES, "status")
        klass = class_code(body.get("class"))
        typed = known_class(body["class"])
        patient = links.patient_num(conn, body.get("subject"), "subject")
        start, end = parse_period(body)
        org_level, org_num = service_provider(conn, body.get("serviceProvider"))
        stay = body.get("hospitalization") or {}
        values = {
            "patient_num": patient,
            "status": status,
            "class_code": typed or klass,
            self.type_column: self.visit_type(typed, current),
            "entry_date": start,
            "out_date": end,
            "service_org_level": org_level,
            "service_org_num": org_num,
            self.entry_mode_column: mode_code(
                stay.get("admitSource"), "hospitalization.admitSource"
            ),
            self.exit_mode_column: mode_code(
                stay.get("dischargeDisposition"), "hospitalization.dischargeDisposition"
            ),
        }
        return values

    def visit_type(self, klass: str | None, current: RowMapping | None) -> str | None:
        """The Codoc visit type: kept while the class is unchanged, else derived from it
        (none for a class the warehouse does not type)."""
        if klass is None:
            return None
        if current is not None and current["class_code"] == klass and current[self.type_column]:
            return str(current[self.type_column])
        return self.type_values[klass]

    def usual_identifier(
        self, conn: Connection, body: dict[str, Any], patient: int, current: RowMapping | None
    ) -> str | None:
        """The first usual identifier (the others are kept with the row), unique among this
        patient's encounters of this kind."""
        first = identifiers.first_usual_pair(body)
        if first is None:
            return None
        value = first[1]
        if len(value) > IDENTIFIER_LENGTH:
            return None  # longer than the column: kept with the row only
        column = self.table.c[self.identifier_column]
        query = select(self.key).where(column == value, self.table.c.patient_num == patient)
        if current is not None:
            query = query.where(self.key != current[self.key.name])
        other = conn.execute(query).scalar()
        if other is not None:
            raise Duplicate(
                f"{self.label} with identifier {value} already exists for Patient {patient} "
                f"(Encounter/{self.fhir_id(other)})",
                expression=["identifier"],
            )
        return value

    # --- output ------------------------------------------------------------------------

    def load_related(self, conn: Connection, rows: Sequence[RowMapping]) -> dict[str, Any]:
        pairs = [(row["service_org_level"], row["service_org_num"]) for row in rows]
        return {"org_names": links.organization_names(conn, pairs)}

    def common_fhir(self, row: RowMapping, related: dict[str, Any]) -> dict[str, Any]:
        """The Encounter fields stays and movements share, from a row."""
        ident = self.fhir_id(row[self.key.name])
        found = [identifiers.official(ident)]
        if row[self.identifier_column]:
            found.append(identifiers.held(row[self.identifier_column]))
        resource: dict[str, Any] = {
            "resourceType": "Encounter",
            "id": ident,
            "identifier": found,
            "status": row["status"] or ("finished" if row["out_date"] else "in-progress"),
            "class": self.answered_class(row),
            "subject": reference_dict("Patient", row["patient_num"]),
        }
        period = {
            name: format_datetime(row[column])
            for name, column in (("start", "entry_date"), ("end", "out_date"))
            if row[column] is not None
        }
        if period:
            resource["period"] = period
        hospitalization = {
            name: mode_concept(row[column])
            for name, column in (
                ("admitSource", self.entry_mode_column),
                ("dischargeDisposition", self.exit_mode_column),
            )
            if row[column]
        }
        if hospitalization:
            resource["hospitalization"] = hospitalization
        if row["service_org_level"] and row["service_org_num"] is not None:
            resource["serviceProvider"] = links.organization_reference(
                row["service_org_level"], row["service_org_num"], related["org_names"]
            )
        return resource

    def answered_class(self, row: RowMapping) -> dict[str, str]:
        """The stored class (a typed one with its system and display), else the one the
        Codoc visit type implies, else IMP."""
        code = row["class_code"]
        if code in CLASS_DISPLAYS:
            return class_coding(str(code))
        if code:
            return {"code": str(code)}
        by_type = {value: code for code, value in self.type_values.items()}
        return class_coding(by_type.get(row[self.type_column], "IMP"))
