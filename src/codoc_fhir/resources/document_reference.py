"""DocumentReference (clinical documents): `dwh_document`, its plain text in `dwh_text` and
its authors in `dwh_document_author`.

The attachment bytes are kept exactly as sent (`content_bytes`) and answered again byte for
byte; `displayed_text` keeps the decoded document (HTML or plain text) and `dwh_text.text`
the plain text with HTML tags stripped, for NLP.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.engine import RowMapping

from codoc_fhir.config import Settings
from codoc_fhir.fhir import identifiers
from codoc_fhir.fhir.dates import format_datetime, parse_datetime, utc_now
from codoc_fhir.fhir.errors import Conflict, Invalid, Required
from codoc_fhir.fhir.references import reference_dict
from codoc_fhir.fhir.validation import check_code, require, text_value
from codoc_fhir.resources import concepts, links
from codoc_fhir.resources.attachments import (
    attachment,
    decode_base64,
    parse_content,
)
from codoc_fhir.resources.base import Referrer, Resource, child_rows, count_referrers
from codoc_fhir.search import catalog
from codoc_fhir.warehouse.schema import (
    dwh_document,
    dwh_document_author,
    dwh_enrsem,
    dwh_text,
    dwh_thesaurus_unit,
)

DOCUMENT_STATUS = ("current", "superseded", "entered-in-error")
DOCUMENT_TYPE_SYSTEM = "urn:codoc:fhir:document-type"
AUTHOR_COLUMN_LENGTH = 200  # dwh_document.author: the joined names, cut to the column size


# --- authors ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Author:
    """One author[] entry: a person (display only) or an organisation of any level."""

    display: str | None
    org_level: str | None = None
    org_num: int | None = None


def parse_author(conn: Connection, value: Any, field: str) -> Author:
    """A person (`{"display": ...}`, a Practitioner, PractitionerRole, RelatedPerson,
    Patient or Device reference: its display goes to the author column) or an existing
    `Organization/<level>-N`. The reference of a person, or of an Organization outside the
    four levels, is kept with the row and answered as sent (CONTRACT section 9)."""
    if not isinstance(value, dict):
        raise Invalid(f"{field} must be a Reference object", expression=[field])
    display = value.get("display")
    if display is not None:
        display = text_value(display, f"{field}.display", 400)
    if not value.get("reference"):
        if not display:
            raise Required(
                f"Field '{field}.display' or '{field}.reference' is required", expression=[field]
            )
        return Author(display)
    organization = links.column_organization(conn, value, field, links.ORG_LEVELS)
    if organization is None:
        return Author(display)
    level, num = organization
    return Author(display, level.name, num)


def parse_authors(conn: Connection, body: dict[str, Any]) -> list[Author]:
    return [
        parse_author(conn, value, f"author[{position}]")
        for position, value in enumerate(body.get("author") or [])
    ]


def author_columns(conn: Connection, authors: Sequence[Author]) -> dict[str, Any]:
    """dwh_document.author (people's names) and department_num / unit_num (first ones)."""
    people = "; ".join(
        author.display for author in authors if author.display and not author.org_level
    )
    firsts: dict[str, int] = {}
    for author in authors:
        if author.org_level and author.org_num is not None:
            firsts.setdefault(author.org_level, author.org_num)
    department, unit = firsts.get("department"), firsts.get("unit")
    if department is None and unit is not None:
        department = conn.execute(
            select(dwh_thesaurus_unit.c.department_num).where(dwh_thesaurus_unit.c.unit_num == unit)
        ).scalar()
    return {
        "author": people[:AUTHOR_COLUMN_LENGTH] or None,
        "department_num": department,
        "unit_num": unit,
    }


# --- the resource ----------------------------------------------------------------------


def document_type(body: dict[str, Any]) -> str | None:
    """type.coding[0].code (or type.text) -> document_type."""
    concept = body.get("type")
    if not concept:
        return None
    codings = concept.get("coding") or []
    value = codings[0].get("code") if codings else None
    value = value or concept.get("text")
    if not value:
        raise Required("Field 'type.coding[0].code' is required", expression=["type"])
    return text_value(value, "type", 100)


class DocumentReference(Resource):
    fhir_type = "DocumentReference"
    label = "DocumentReference"
    table = dwh_document
    codoc_path = "documentreference"
    search_params = catalog.document_params()

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def validate(self, body: Any) -> dict[str, Any]:
        """The documented base64 message comes before the generic model check."""
        if isinstance(body, dict):
            for content in body.get("content") or []:
                if isinstance(content, dict) and isinstance(content.get("attachment"), dict):
                    data = content["attachment"].get("data")
                    if data is not None and data != "":
                        decode_base64(data)
        return super().validate(body)

    def referrers(self) -> Sequence[Referrer]:
        return (
            Referrer(dwh_enrsem, "document_num", "Observation"),
            concepts.fact_referrer(self.settings, "document_num"),
        )

    # --- input -------------------------------------------------------------------------

    def to_values(
        self, conn: Connection, body: dict[str, Any], current: RowMapping | None
    ) -> dict[str, Any]:
        status = check_code(require(body, "status"), DOCUMENT_STATUS, "status")
        patient = links.patient_num(conn, body.get("subject"), "subject")
        if current is not None and current["patient_num"] != patient:
            self.check_no_derived_rows(conn, current["document_num"])
        date = parse_datetime(require(body, "date"), "date")
        # the first encounter (a movement gives its stay); the others are kept, answered
        encounters = (body.get("context") or {}).get("encounter") or []
        stay = (
            links.stay_of_encounter(conn, encounters[0], "context.encounter[0]", patient)
            if encounters
            else None
        )
        content = parse_content(body)
        source_id = identifiers.first_usual_identifier(body)
        values = {
            "patient_num": patient,
            "status": status,
            "document_date": date,
            "stay_num": stay,
            "title": content.title,
            "content_type": content.content_type,
            "content_bytes": content.raw,
            "displayed_text": content.text,
            "document_type": document_type(body),
            "id_doc_source": text_value(source_id, "identifier", 300) if source_id else None,
        }
        values.update(author_columns(conn, parse_authors(conn, body)))
        return values

    def check_no_derived_rows(self, conn: Connection, num: int) -> None:
        """A document whose phenotypes or facts exist keeps its patient (409 otherwise)."""
        blockers = count_referrers(conn, self.referrers(), num)
        if blockers:
            raise Conflict(
                f"DocumentReference {num} cannot change patient: it is referenced by {blockers}"
            )

    def write_children(self, conn: Connection, num: int, body: dict[str, Any]) -> None:
        """dwh_text (plain text), dwh_document_author rows, phenotype dates kept in step."""
        row = conn.execute(
            select(dwh_document.c.patient_num, dwh_document.c.document_date).where(
                dwh_document.c.document_num == num
            )
        ).one()
        now = utc_now()
        self.before_delete(conn, num)
        conn.execute(
            dwh_text.insert().values(
                document_num=num,
                patient_num=row.patient_num,
                text=parse_content(body).plain_text,
                update_date=now,
            )
        )
        authors = parse_authors(conn, body)
        if any(author.display or author.org_level for author in authors):
            conn.execute(
                dwh_document_author.insert(),
                [
                    {
                        "document_num": num,
                        "author_order": order,
                        "author_display": author.display,
                        "org_level": author.org_level,
                        "org_num": author.org_num,
                    }
                    for order, author in enumerate(authors)
                    if author.display or author.org_level  # else its reference is kept
                ],
            )
        conn.execute(
            dwh_enrsem.update()
            .where(dwh_enrsem.c.document_num == num)
            .values(document_date=row.document_date)
        )

    def before_delete(self, conn: Connection, num: int) -> None:
        conn.execute(dwh_text.delete().where(dwh_text.c.document_num == num))
        conn.execute(dwh_document_author.delete().where(dwh_document_author.c.document_num == num))

    # --- output ------------------------------------------------------------------------

    def load_related(self, conn: Connection, rows: Sequence[RowMapping]) -> dict[str, Any]:
        nums = [row["document_num"] for row in rows]
        table = dwh_document_author.c
        authors = child_rows(conn, table.document_num, nums, table.author_order)
        pairs = [(a.org_level, a.org_num) for found in authors.values() for a in found]
        return {"authors": authors, "org_names": links.organization_names(conn, pairs)}

    def to_fhir(self, row: RowMapping, related: dict[str, Any]) -> dict[str, Any]:
        num = row["document_num"]
        found = identifiers.official_and_usual(num, row["id_doc_source"])
        resource: dict[str, Any] = {
            "resourceType": "DocumentReference",
            "id": str(num),
            "identifier": found,
            "status": row["status"] or "current",
        }
        if row["document_type"]:
            resource["type"] = {
                "coding": [{"system": DOCUMENT_TYPE_SYSTEM, "code": row["document_type"]}]
            }
        resource["subject"] = reference_dict("Patient", row["patient_num"])
        resource["date"] = format_datetime(row["document_date"])
        authors = [self.author_reference(a, related) for a in related["authors"].get(num, [])]
        if authors:
            resource["author"] = authors
        resource["content"] = [{"attachment": attachment(row)}]
        if row["stay_num"] is not None:
            resource["context"] = {"encounter": [reference_dict("Encounter", row["stay_num"])]}
        return resource

    @staticmethod
    def author_reference(author: Any, related: dict[str, Any]) -> dict[str, Any]:
        if not author.org_level:
            return {"display": author.author_display}
        name = related["org_names"].get((author.org_level, author.org_num))
        return reference_dict(
            "Organization", f"{author.org_level}-{author.org_num}", name or author.author_display
        )
