"""Organization: the hospital tree, one warehouse table per level.

instance (hospital_instance) > site (dwh_thesaurus_site) > department
(dwh_thesaurus_department) > unit (dwh_thesaurus_unit). Each level is one resource kind
with its own id prefix (`instance-1`, `site-1`, `department-1`, `unit-1`) sharing the
FHIR type Organization and the Codoc path `/organization/`; POST picks the kind from the
type code. Counters (patients, stays, children) are computed on read.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from sqlalchemy import (
    Connection,
    select,
)
from sqlalchemy.engine import RowMapping

from codoc_fhir.config import Settings
from codoc_fhir.fhir import identifiers
from codoc_fhir.fhir.dates import format_date
from codoc_fhir.fhir.errors import Duplicate, Invalid, Required
from codoc_fhir.fhir.references import parse_reference
from codoc_fhir.fhir.validation import check_length, require
from codoc_fhir.resources import links
from codoc_fhir.resources.base import Referrer, Resource
from codoc_fhir.resources.links import ORG_LEVELS, OrgLevel
from codoc_fhir.resources.organization.from_fhir import (
    CODE_LENGTH,
    DERIVED_PREFIX,
    PARENT_REQUIRED,
    UNIT_PERIOD_URL,
    UNIT_PERIOD_URLS,
    derived_code,
    period_date,
)
from codoc_fhir.resources.organization.levels import PARENT_COLUMNS, level_of, with_article
from codoc_fhir.resources.organization.queries import (
    activity_counts,
    child_counts,
    tree_referrers,
)
from codoc_fhir.resources.organization.search_params import ORGANIZATION_SEARCH
from codoc_fhir.resources.organization.to_fhir import (
    COUNTERS,
    answer_identifiers,
    counter_url,
    type_codings,
)


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
        return tree_referrers(self.settings, self.level.name)

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
