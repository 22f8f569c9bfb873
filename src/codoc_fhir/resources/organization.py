"""Organization: the hospital tree, one warehouse table per level.

instance (hospital_instance) > site (dwh_thesaurus_site) > department
(dwh_thesaurus_department) > unit (dwh_thesaurus_unit). Each level is one resource kind
with its own id prefix (`instance-1`, `site-1`, `department-1`, `unit-1`) sharing the
FHIR type Organization and the Codoc path `/organization/`; POST picks the kind from the
type code. Counters (patients, stays, children) are computed on read.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import date
from typing import Any, ClassVar

from sqlalchemy import Connection, Table, and_, exists, or_, select
from sqlalchemy.engine import RowMapping

from codoc_fhir.config import Settings
from codoc_fhir.fhir import identifiers
from codoc_fhir.fhir.dates import format_date, parse_date, parse_datetime
from codoc_fhir.fhir.errors import Duplicate, Invalid, Required
from codoc_fhir.fhir.references import parse_reference
from codoc_fhir.fhir.validation import check_length, require
from codoc_fhir.resources import links
from codoc_fhir.resources.base import Referrer, Resource
from codoc_fhir.resources.concepts import fact_referrer
from codoc_fhir.resources.data_fact import ORG_LEVEL_SYSTEM as LEVEL_SYSTEM
from codoc_fhir.resources.links import ORG_LEVELS, OrgLevel
from codoc_fhir.resources.organization_queries import (
    ORGANIZATION_SEARCH,
    PARENT_COLUMNS,
    TYPE_CODES,
    activity_counts,
    child_counts,
)
from codoc_fhir.warehouse.schema import (
    dwh_document,
    dwh_document_author,
    dwh_patient,
    dwh_patient_mvt,
    dwh_patient_stay,
)

HL7_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/organization-type"
HL7_CODES = frozenset(level.hl7_code for level in ORG_LEVELS.values() if level.hl7_code)
DERIVED_PREFIX = "~"  # a code the server derived (no usable identifier was sent)
DERIVED_LENGTH = 16

EXTENSION_BASE = "urn:codoc:fhir:extension:"
UNIT_PERIOD_URL = "unit_period"  # as the Codoc documentation writes it
UNIT_PERIOD_URLS = (UNIT_PERIOD_URL, EXTENSION_BASE + UNIT_PERIOD_URL)
COUNTERS = ("patient_count", "stay_count", "child_count")

PARENT_REQUIRED = ("department", "unit")
CODE_LENGTH = {"instance": 30, "site": 30, "department": 30, "unit": 50}


def counter_url(name: str) -> str:
    """The url of a read-only counter extension (`urn:codoc:fhir:extension:patient_count`)."""
    return EXTENSION_BASE + name


def level_of(body: dict[str, Any]) -> str | None:
    """The level of the hospital tree a body's type names, or None for an Organization
    outside the four levels (a payer, an insurer, an external lab, no type at all).

    A coding names a level when it is a level coding (`urn:codoc:fhir:organization-level`)
    or an HL7 organization-type prov / dept / team, or a level or HL7 code without system;
    the level coding wins when there are several. Codings of other systems never do."""
    codings = [
        coding
        for concept in body.get("type") or []
        if isinstance(concept, dict)
        for coding in concept.get("coding") or []
        if isinstance(coding, dict) and coding.get("code") in TYPE_CODES
    ]
    levels = [coding for coding in codings if coding.get("system") == LEVEL_SYSTEM]
    levels += [
        coding
        for coding in codings
        if coding.get("system") in (None, HL7_TYPE_SYSTEM) and coding["code"] in HL7_CODES
    ]
    levels += [coding for coding in codings if coding.get("system") is None]
    return TYPE_CODES[levels[0]["code"]] if levels else None


def derived_code(level: str, body: dict[str, Any], parent: dict[str, Any]) -> str:
    """A code for an Organization sent without a usual identifier that fits the column:
    a hash of the identifier that did not fit (system and value), else of the level, the
    name and the parent. The same resource gets the same code on every import; the
    leading `~` tells it from a client's code (it is not answered as an identifier)."""
    first = identifiers.first_usual_pair(body)
    if first is not None:
        source = f"identifier|{first[0] or ''}|{first[1]}"
    else:
        parents = ",".join(f"{column}={num}" for column, num in sorted(parent.items()) if num)
        source = f"name|{level}|{body.get('name')}|{parents}"
    return DERIVED_PREFIX + hashlib.sha256(source.encode()).hexdigest()[:DERIVED_LENGTH]


def with_article(label: str) -> str:
    return f"an {label}" if label[0] in "AEIOU" else f"a {label}"


class OrganizationKind(Resource):
    """One level of the organisation tree (subclasses name the level)."""

    fhir_type = "Organization"
    codoc_path = "organization"
    search_params = ORGANIZATION_SEARCH
    level: ClassVar[OrgLevel]

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def accepts_create(self, body: dict[str, Any]) -> bool:
        if body.get("resourceType") != self.fhir_type:
            return True  # the model check then answers the resourceType error
        return level_of(body) == self.level.name

    # --- input -------------------------------------------------------------------------

    def to_values(
        self, conn: Connection, body: dict[str, Any], current: RowMapping | None
    ) -> dict[str, Any]:
        level = level_of(body)
        if level != self.level.name:
            raise Invalid(
                f"The organization level cannot change: this is {with_article(self.level.label)}"
                f", the body says {level or 'none of the four levels'}",
                expression=["type"],
            )
        values = {self.level.name_column: check_length(require(body, "name"), 400, "name")}
        values.update(self.parent_values(conn, body.get("partOf")))
        values.update(self.period_values(body.get("extension") or []))
        code = self.code_of(body, values, current)
        values[self.level.code_column] = code
        self.check_code_unique(conn, code, current)
        return values

    def code_of(
        self, body: dict[str, Any], values: dict[str, Any], current: RowMapping | None
    ) -> str:
        """The first usual identifier's value when it fits the code column (the other
        identifiers are kept); else a derived code (`derived_code`), which an update
        without a usable identifier keeps."""
        first = identifiers.first_usual_pair(body)
        if first is not None and len(first[1]) <= CODE_LENGTH[self.level.name]:
            return first[1]
        previous = current[self.level.code_column] if current is not None else None
        if first is None and previous and previous.startswith(DERIVED_PREFIX):
            return str(previous)
        parents = {column: values[column] for column in PARENT_COLUMNS[self.level.name].values()}
        return derived_code(self.level.name, body, parents)

    def check_code_unique(self, conn: Connection, code: str, current: RowMapping | None) -> None:
        """An organization code is unique within its level (409 duplicate)."""
        key, column = self.table.c[self.level.key], self.table.c[self.level.code_column]
        owner = conn.execute(select(key).where(column == code)).scalar()
        if owner is not None and (current is None or owner != current[self.level.key]):
            raise Duplicate(
                f"Organization code {code!r} already exists: {self.level.name}-{owner}",
                expression=["identifier"],
            )

    def parent_values(self, conn: Connection, part_of: Any) -> dict[str, Any]:
        """partOf -> the parent column of this level (the others of the table cleared)."""
        columns = PARENT_COLUMNS[self.level.name]
        values: dict[str, Any] = {column: None for column in columns.values()}
        if part_of is None:
            if self.level.name in PARENT_REQUIRED:
                raise Required(
                    f"Organization partOf is required for {self.level.name}",
                    expression=["partOf"],
                )
            return values
        if not links.names_warehouse_organization(part_of, "partOf"):
            if self.level.name in PARENT_REQUIRED:
                raise Invalid(
                    f"partOf of {with_article(self.level.label.lower())} must name its parent "
                    "in the hospital tree (Organization/site-N, department-N...)",
                    expression=["partOf"],
                )
            return values  # a parent outside the tree: kept with the row as sent
        if not columns:
            raise Invalid(
                "An instance is the root of the hierarchy: it has no partOf",
                expression=["partOf"],
            )
        reference = parse_reference(part_of, "partOf", ("Organization",))
        parent, _ = links.parse_org_id(reference.id, "partOf")
        if parent.name not in columns:
            allowed = " or ".join(
                with_article(level.label) for level in ORG_LEVELS.values() if level.name in columns
            )
            raise Invalid(
                f"{self.level.label} parent must be {allowed}, got {parent.label}",
                expression=["partOf"],
            )
        parent, parent_num = links.organization(conn, part_of, "partOf", tuple(columns))
        values[columns[parent.name]] = parent_num
        return values

    def period_values(self, extensions: list[dict[str, Any]]) -> dict[str, Any]:
        """extension unit_period (valuePeriod) -> unit_start_date / unit_end_date."""
        periods = [item for item in extensions if item.get("url") in UNIT_PERIOD_URLS]
        if self.level.name != "unit":
            if periods:
                raise Invalid(
                    "The unit_period extension applies to units only", expression=["extension"]
                )
            return {}
        if len(periods) > 1:
            raise Invalid("At most one unit_period extension", expression=["extension"])
        period: dict[str, Any] = (periods[0].get("valuePeriod") if periods else {}) or {}
        if periods and not period:
            raise Required(
                "Field 'extension[unit_period].valuePeriod' is required", expression=["extension"]
            )
        field = "extension[unit_period].valuePeriod"
        start = period_date(period.get("start"), f"{field}.start")
        end = period_date(period.get("end"), f"{field}.end")
        if start and end and end < start:
            raise Invalid("unit_period ends before it starts", expression=[f"{field}.end"])
        return {"unit_start_date": start, "unit_end_date": end}

    # --- delete ------------------------------------------------------------------------

    def referrers(self) -> Sequence[Referrer]:
        """Children first, then every resource pointing at this organisation."""
        name = self.level.name
        found: list[Referrer] = [
            Referrer(ORG_LEVELS[child].table, column, ORG_LEVELS[child].label)
            for child, parents in PARENT_COLUMNS.items()
            for parent, column in parents.items()
            if parent == name
        ]
        found += [
            Referrer(
                dwh_patient, "managing_org_num", "Patient", where=_at("managing_org_level", name)
            ),
            Referrer(
                dwh_patient_stay,
                "service_org_num",
                "Encounter",
                where=_at("service_org_level", name),
            ),
            Referrer(
                dwh_patient_mvt,
                "service_org_num",
                "Encounter",
                where=_at("service_org_level", name),
            ),
        ]
        column = f"{name}_num"
        if name in ("department", "unit"):
            found += [
                Referrer(
                    dwh_patient_mvt, column, "Encounter", where=_not_service_org(name, column)
                ),
                Referrer(dwh_document, column, "DocumentReference"),
                fact_referrer(self.settings, column),
            ]
        found.append(
            Referrer(dwh_document_author, "org_num", "DocumentReference", where=_authored_by(name))
        )
        return found

    # --- output ------------------------------------------------------------------------

    def load_related(self, conn: Connection, rows: Sequence[RowMapping]) -> dict[str, Any]:
        nums = [row[self.level.key] for row in rows]
        parents = [
            (parent, row[column])
            for parent, column in PARENT_COLUMNS[self.level.name].items()
            for row in rows
        ]
        return {
            "org_names": links.organization_names(conn, parents),
            "children": child_counts(conn, self.level.name, nums),
            "activity": activity_counts(conn, self.level.name, nums),
        }

    def to_fhir(self, row: RowMapping, related: dict[str, Any]) -> dict[str, Any]:
        num = row[self.level.key]
        ident = self.fhir_id(num)
        resource: dict[str, Any] = {
            "resourceType": "Organization",
            "id": ident,
            "extension": self.answer_extensions(row, related),
            "identifier": answer_identifiers(ident, row[self.level.code_column]),
            "type": [{"coding": type_codings(self.level)}],
            "name": row[self.level.name_column],
        }
        for parent, column in PARENT_COLUMNS[self.level.name].items():
            if row[column] is not None:
                resource["partOf"] = links.organization_reference(
                    parent, row[column], related["org_names"]
                )
                break
        return resource

    def answer_extensions(self, row: RowMapping, related: dict[str, Any]) -> list[dict]:
        """unit_period (units with dates), then the read-only counters."""
        found: list[dict[str, Any]] = []
        if self.level.name == "unit":
            period = {
                "start": format_date(row["unit_start_date"]),
                "end": format_date(row["unit_end_date"]),
            }
            period = {key: value for key, value in period.items() if value}
            if period:
                found.append({"url": UNIT_PERIOD_URL, "valuePeriod": period})
        num = row[self.level.key]
        patients, stays = related["activity"].get(num, (0, 0))
        counts = {"patient_count": patients, "stay_count": stays}
        counts["child_count"] = related["children"].get(num, 0)
        found += [{"url": counter_url(name), "valueInteger": counts[name]} for name in COUNTERS]
        return found


class InstanceOrganization(OrganizationKind):
    level = ORG_LEVELS["instance"]
    label = level.label
    table = level.table
    id_prefix = "instance-"


class SiteOrganization(OrganizationKind):
    level = ORG_LEVELS["site"]
    label = level.label
    table = level.table
    id_prefix = "site-"


class DepartmentOrganization(OrganizationKind):
    level = ORG_LEVELS["department"]
    label = level.label
    table = level.table
    id_prefix = "department-"


class UnitOrganization(OrganizationKind):
    level = ORG_LEVELS["unit"]
    label = level.label
    table = level.table
    id_prefix = "unit-"


ORGANIZATION_KINDS = (
    InstanceOrganization,
    SiteOrganization,
    DepartmentOrganization,
    UnitOrganization,
)


# --- helpers ---------------------------------------------------------------------------


def answer_identifiers(ident: str, code: str) -> list[dict[str, str]]:
    """The official id, then the code unless the server derived it."""
    found = [identifiers.official(ident)]
    if not code.startswith(DERIVED_PREFIX):
        found.append(identifiers.held(code))
    return found


def type_codings(level: OrgLevel) -> list[dict[str, str]]:
    """The level coding first, then the HL7 organization-type one (none for instances)."""
    codings = [{"system": LEVEL_SYSTEM, "code": level.name, "display": level.label}]
    if level.hl7_code and level.hl7_display:
        codings.append(
            {"system": HL7_TYPE_SYSTEM, "code": level.hl7_code, "display": level.hl7_display}
        )
    return codings


def period_date(value: Any, field: str) -> date | None:
    """A Period bound -> the calendar date as written (the column is a DATE)."""
    if value is None:
        return None
    parse_datetime(value, field)
    if len(value) >= 10:
        return date.fromisoformat(value[:10])
    return parse_date(value, field)[0].date()


def _at(level_column: str, level: str) -> Any:
    return lambda table: table.c[level_column] == level


def _not_service_org(level: str, column: str) -> Any:
    """Movements already counted through their service organisation are not counted twice."""
    return lambda table: or_(
        table.c.service_org_level.is_(None),
        table.c.service_org_level != level,
        table.c.service_org_num.is_(None),
        table.c.service_org_num != table.c[column],
    )


def _authored_by(level: str) -> Any:
    """Author rows of this level, except documents already counted by their own column."""

    def where(table: Table) -> Any:
        condition = table.c.org_level == level
        if level not in ("department", "unit"):
            return condition
        counted = exists().where(
            dwh_document.c.document_num == table.c.document_num,
            dwh_document.c[f"{level}_num"] == table.c.org_num,
        )
        return and_(condition, ~counted)

    return where
