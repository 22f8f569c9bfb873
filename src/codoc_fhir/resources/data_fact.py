"""What the resources stored as `dwh_data` rows share (Procedure, MedicationRequest,
DiagnosticReport, lab Observation): the thesaurus binding, code, subject, encounter,
department/unit performers, the usual identifier (id_data_source) and the event date in
any of its `[x]` forms.

What a column cannot hold (a Practitioner performer, a second identifier, the movement an
encounter reference names) is kept with the row by the generic mechanism (fhir/kept.py)
and answered as sent: the mappings here only fill the columns with what fits.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import Connection, FromClause, select
from sqlalchemy.engine import RowMapping

from codoc_fhir.config import Settings
from codoc_fhir.fhir import identifiers
from codoc_fhir.fhir.dates import format_datetime, parse_datetime
from codoc_fhir.fhir.errors import Invalid, Required
from codoc_fhir.fhir.references import reference_dict
from codoc_fhir.fhir.validation import check_length
from codoc_fhir.resources import concepts, links
from codoc_fhir.resources.base import Resource, RowImage, SearchParam, row_images
from codoc_fhir.search.declare import data_fact_params
from codoc_fhir.warehouse.schema import (
    dwh_data,
    dwh_thesaurus_data,
    dwh_thesaurus_department,
    dwh_thesaurus_unit,
)

ORG_LEVEL_SYSTEM = "urn:codoc:fhir:organization-level"
ORG_COLUMNS = ("department", "unit")  # the levels a fact's performers give columns


CONCEPT_CODE_LENGTH = 100  # dwh_thesaurus_data.concept_code


class DataFactResource(Resource):
    """A resource kind whose rows are `dwh_data` facts of one thesaurus."""

    table = dwh_data
    thesaurus_setting: ClassVar[str]  # the Settings attribute naming the thesaurus
    concept_element: ClassVar[str] = "code"  # the CodeableConcept bound to the thesaurus
    search_params: ClassVar[dict[str, SearchParam]] = data_fact_params()
    batch_creates = True  # no check of one fact reads another fact

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.thesaurus_code: str = getattr(settings, self.thesaurus_setting)
        # built once: clauses are immutable, and every read, search and create asks for it
        self._scope = dwh_data.c.thesaurus_code == self.thesaurus_code

    def scope(self) -> Any:
        return self._scope

    # --- input -------------------------------------------------------------------------

    def concept_num(self, conn: Connection, concept: Any, field: str) -> int:
        """The thesaurus concept of a coded element; one made from its text when it has no
        coded coding (`{"text": "eye color"}`, valid FHIR: the text is kept and answered)."""
        return concepts.resolve_concept(
            conn, self.thesaurus_code, coded(concept), field, strict=self.settings.strict_codes
        )

    def prefetch(self, conn: Connection, bodies: Sequence[dict[str, Any]]) -> None:
        """The subjects and the concepts of the batch, in one query each (links.patient_num
        and concept_num then find them)."""
        links.prefetch_patients(conn, [body.get("subject") for body in bodies])
        coded_elements = [coded(body.get(self.concept_element)) for body in bodies]
        concepts.prefetch_concepts(conn, self.thesaurus_code, coded_elements)

    def new_row_images(
        self,
        conn: Connection,
        nums: Sequence[int],
        rows: Sequence[dict[str, Any]],
        bodies: Sequence[dict[str, Any]],
    ) -> tuple[list[RowImage], dict[str, Any]] | None:
        """The new facts as `base_query` reads them: their columns, with the concept's code
        and label and the department and unit names the query joins (one query for the
        batch's concepts, one per organisation level named)."""
        images = row_images(dwh_data, self.key, nums, rows)
        if images is None:
            return None
        found = concepts.concepts_by_num(conn, [image["thesaurus_data_num"] for image in images])
        pairs = [(level, image[f"{level}_num"]) for image in images for level in ORG_COLUMNS]
        names = links.organization_names(conn, pairs)
        if not join_names(images, found, names):
            return None
        return images, self.load_related(conn, images)

    def common_values(
        self, conn: Connection, body: dict[str, Any], markers: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """subject, encounter and the usual identifier, checked against the warehouse, and
        extra_json: the markers to_fhir needs to answer the form sent (`markers`, and the
        movement an encounter reference names: the row holds its stay)."""
        patient = links.patient_num(conn, body.get("subject"), "subject", guarded=True)
        encounter = body.get("encounter")
        return {
            "patient_num": patient,
            "thesaurus_code": self.thesaurus_code,
            "stay_num": links.stay_of_encounter(conn, encounter, "encounter", patient)
            if encounter
            else None,
            "id_data_source": check_length(
                identifiers.first_usual_identifier(body), 300, "identifier"
            ),
            "extra_json": dump_extra({"movement": links.movement_of(encounter)} | (markers or {})),
        }

    def performer_values(
        self, conn: Connection, actors: list[tuple[Any, str]], levels: tuple[str, ...]
    ) -> dict[str, Any]:
        """department_num / unit_num: the first department and unit performers. Other
        performers (people, devices, other levels, a second department) fit no column: they
        are kept with the row and answered as sent."""
        found: dict[str, int] = {}
        for actor, field in actors:
            organization = links.column_organization(conn, actor, field, levels, guarded=True)
            if organization is None:
                continue
            if organization[0].name in found:  # kept, not stored: no foreign key checks it
                links.column_organization(conn, actor, field, levels)
            else:
                found[organization[0].name] = organization[1]
        return {"department_num": found.get("department"), "unit_num": found.get("unit")}

    # --- output ------------------------------------------------------------------------

    def base_query(self, source: FromClause | None = None) -> Any:
        """The facts of this thesaurus with their concept and performer names, in one query
        (over `source`, the new row of an INSERT, in place of dwh_data: Resource.base_query)."""
        concept, department, unit = dwh_thesaurus_data, dwh_thesaurus_department, dwh_thesaurus_unit
        facts = dwh_data if source is None else source
        return (
            select(
                facts,
                concept.c.concept_code,
                concept.c.concept_str,
                department.c.department_str,
                unit.c.unit_str,
            )
            .join(concept, concept.c.thesaurus_data_num == facts.c.thesaurus_data_num)
            .outerjoin(department, department.c.department_num == facts.c.department_num)
            .outerjoin(unit, unit.c.unit_num == facts.c.unit_num)
            .where(facts.c.thesaurus_code == self.thesaurus_code)
        )

    def load_related(self, conn: Connection, rows: Sequence[RowMapping]) -> dict[str, Any]:
        org_names = {
            (level, row[f"{level}_num"]): row[f"{level}_str"]
            for row in rows
            for level in ("department", "unit")
            if row[f"{level}_num"] is not None
        }
        return {
            "concepts": {
                row["thesaurus_data_num"]: concepts.Concept(
                    row["thesaurus_code"], row["concept_code"], row["concept_str"]
                )
                for row in rows
            },
            "org_names": org_names,
        }

    def identity(self, row: RowMapping) -> dict[str, Any]:
        """resourceType, id and identifier[] (official, then the usual one)."""
        num = row["data_num"]
        found = identifiers.official_and_usual(num, row["id_data_source"])
        return {"resourceType": self.fhir_type, "id": str(num), "identifier": found}

    def code(self, row: RowMapping, related: dict[str, Any]) -> dict[str, Any]:
        return concepts.codeable_concept(related["concepts"][row["thesaurus_data_num"]])

    def subject_and_encounter(self, row: RowMapping) -> dict[str, Any]:
        """subject and encounter: the stay, or the movement of it the reference named."""
        answer: dict[str, Any] = {"subject": reference_dict("Patient", row["patient_num"])}
        if row["stay_num"] is not None:
            movement = markers_of(row).get("movement")
            ident = f"movement-{movement}" if movement else row["stay_num"]
            answer["encounter"] = reference_dict("Encounter", ident)
        return answer

    def performer_actors(self, row: RowMapping, related: dict[str, Any]) -> list[tuple[str, dict]]:
        """(level, actor reference) of the department and unit performers."""
        actors = []
        for level in ("department", "unit"):
            if row[f"{level}_num"] is not None:
                ref = links.organization_reference(level, row[f"{level}_num"], related["org_names"])
                actors.append((level, ref))
        return actors


def join_names(
    images: list[RowImage], found: dict[int, Any], names: dict[tuple[str, int], str]
) -> bool:
    """Complete new fact rows (`row_images`) with what `base_query` joins to them: their
    concept's code and label (`found`, by number) and their department and unit names
    (`names`, by level and number). False when a concept is not in `found`: the insert
    will refuse the row (its foreign key)."""
    for image in images:
        concept = found.get(image["thesaurus_data_num"])
        if concept is None:
            return False
        image["concept_code"] = concept.concept_code
        image["concept_str"] = concept.concept_str
        for level in ORG_COLUMNS:
            num = image[f"{level}_num"]
            image[f"{level}_str"] = None if num is None else names.get((level, num))
    return True


# --- the event date in any [x] form --------------------------------------------------

DATE_FORMS = ("DateTime", "Period", "Instant")


@dataclass(frozen=True)
class EventDate:
    """An event date (`performed[x]`, `effective[x]`) as columns: start_date / end_date, and
    the form it was sent in (DateTime, Period, PeriodEnd: a period with only an end)."""

    start: datetime
    end: datetime | None
    form: str


def event_date(body: dict[str, Any], element: str) -> EventDate:
    """The date of a fact, required in one of the `[x]` forms that carry a date."""
    sent = [form for form in DATE_FORMS if body.get(f"{element}{form}") is not None]
    if not sent:
        raise Required(
            f"Field '{element}DateTime' (or {element}Period) is required",
            expression=[f"{element}DateTime"],
        )
    form = sent[0]
    field = f"{element}{form}"
    if form != "Period":
        return EventDate(parse_datetime(body[field], field), None, form)
    period = body[field]
    start, end = period.get("start"), period.get("end")
    if start is None and end is None:
        raise Required(f"Field '{field}.start' is required", expression=[f"{field}.start"])
    end_at = parse_datetime(end, f"{field}.end") if end is not None else None
    if start is None:
        assert end_at is not None
        return EventDate(end_at, end_at, "PeriodEnd")
    start_at = parse_datetime(start, f"{field}.start")
    if end_at is not None and end_at < start_at:
        raise Invalid(f"{field}.end is before its start", expression=[field])
    return EventDate(start_at, end_at, form)


def date_marker(date: EventDate) -> str | None:
    """The form to remember in extra_json (None for the default, DateTime)."""
    return None if date.form == "DateTime" else date.form


def date_values(date: EventDate) -> dict[str, Any]:
    return {"start_date": date.start, "document_date": date.start, "end_date": date.end}


def date_answer(row: RowMapping, element: str, form: str | None) -> dict[str, Any]:
    """The event date in the form it was sent (default DateTime; a row with an end date
    and no form, written by SQL, is a period)."""
    start, end = format_datetime(row["start_date"]), format_datetime(row["end_date"])
    form = form or ("Period" if end else "DateTime")
    if form == "PeriodEnd":
        return {f"{element}Period": {"end": end or start}}
    if form == "Period":
        period = {"start": start} | ({"end": end} if end else {})
        return {f"{element}Period": period}
    return {f"{element}{form}": start}


def performer_function(level: str) -> dict[str, Any]:
    """The function the server sets on a performer: its organisation level."""
    return {"coding": [{"system": ORG_LEVEL_SYSTEM, "code": level, "display": level.title()}]}


def dump_extra(elements: dict[str, Any]) -> str | None:
    """FHIR elements with no warehouse column, kept as JSON text (None when empty)."""
    kept = {name: value for name, value in elements.items() if value is not None}
    return json.dumps(kept, separators=(",", ":"), sort_keys=True) if kept else None


def load_extra(text: str | None) -> dict[str, Any]:
    return json.loads(text) if text else {}


def markers_of(row: RowMapping) -> dict[str, Any]:
    """The markers a row keeps in extra_json ({} when none or unreadable)."""
    try:
        markers = load_extra(row["extra_json"])
    except ValueError:
        return {}
    return markers if isinstance(markers, dict) else {}


def coded(concept: Any) -> Any:
    """`concept`, or a coding made from its text when it has no coded coding."""
    if not isinstance(concept, dict) or not isinstance(concept.get("text"), str):
        return concept
    codings = concept.get("coding") or []
    if any(isinstance(coding, dict) and coding.get("code") for coding in codings):
        return concept
    label = concept["text"]
    return {"coding": [{"code": label[:CONCEPT_CODE_LENGTH].strip(), "display": label}]}
