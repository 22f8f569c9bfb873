"""Read-side SQL of the organisation tree: the level structure, the counters answered as
extensions (computed in a few batch queries) and the Organization search parameters.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Connection, cast, false, func, null, or_, select, true, union_all

from codoc_fhir.fhir.references import key_number
from codoc_fhir.resources.base import SearchParam
from codoc_fhir.resources.links import ORG_LEVELS
from codoc_fhir.search import declare
from codoc_fhir.search.types import string as string_search
from codoc_fhir.search.types import token as token_search
from codoc_fhir.search.types.reference import parse as parse_reference_value
from codoc_fhir.warehouse.schema import dwh_patient, dwh_patient_mvt, dwh_patient_stay

# Accepted type codes -> level: the level names, and the HL7 codes prov, dept, team.
TYPE_CODES = {name: name for name in ORG_LEVELS} | {
    level.hl7_code: level.name for level in ORG_LEVELS.values() if level.hl7_code
}
# The parent levels each level accepts in partOf, and the column holding each.
PARENT_COLUMNS: dict[str, dict[str, str]] = {
    "instance": {},
    "site": {"instance": "instance_id"},
    "department": {"site": "site_num", "instance": "instance_id"},
    "unit": {"department": "department_num"},
}


def _code_clause(kind: Any, search_filter: Any) -> Any:
    column = kind.table.c[kind.level.code_column]
    return token_search.clause(kind, declare.token("identifier", column), search_filter)


def _name_clause(kind: Any, search_filter: Any) -> Any:
    column = kind.table.c[kind.level.name_column]
    return string_search.clause(kind, declare.string("name", column), search_filter)


def _type_clause(kind: Any, search_filter: Any) -> Any:
    """type=department (or dept, or system|code): the whole kind matches or not."""
    codes = {token_search.split_token(value.text)[1] for value in search_filter.values}
    matches = any(TYPE_CODES.get(code) == kind.level.name for code in codes)
    if search_filter.modifier == "not":
        matches = not matches
    return true() if matches else false()


def _partof_clause(kind: Any, search_filter: Any) -> Any:
    """partof=Organization/site-1 on the kind's parent columns."""
    columns = PARENT_COLUMNS[kind.level.name]
    if search_filter.missing is not None:
        present = [kind.table.c[column].is_not(None) for column in columns.values()]
        return ~or_(false(), *present) if search_filter.missing else or_(false(), *present)
    conditions = []
    for value in search_filter.values:
        _, ident = parse_reference_value(value.text, "Organization")
        parent, _, number = ident.partition("-")
        num = key_number(number)
        if parent in columns and num is not None:
            conditions.append(kind.table.c[columns[parent]] == num)
    return or_(false(), *conditions)


ORGANIZATION_SEARCH: dict[str, SearchParam] = {
    "identifier": declare.custom("identifier", "token", _code_clause),
    "name": declare.custom("name", "string", _name_clause),
    "type": declare.custom("type", "token", _type_clause),
    "partof": declare.custom("partof", "reference", _partof_clause),
}


def child_counts(conn: Connection, level: str, nums: list[int]) -> dict[int, int]:
    """Direct children of each organisation, one query per child table."""
    counts: dict[int, int] = {}
    for child, parents in PARENT_COLUMNS.items():
        column = parents.get(level)
        if column is None:
            continue
        parent = ORG_LEVELS[child].table.c[column]
        query = select(parent, func.count()).where(parent.in_(nums)).group_by(parent)
        for num, count in conn.execute(query):
            counts[num] = counts.get(num, 0) + count
    return counts


def activity_counts(conn: Connection, level: str, nums: list[int]) -> dict[int, tuple[int, int]]:
    """(distinct patients, distinct stays) of each organisation, in one query.

    Patients it manages, and patients and stays whose stay or movement it served (as
    serviceProvider, or as the movement's department / unit).
    """
    none = cast(null(), BigInteger).label("stay_num")
    sources = [
        select(dwh_patient.c.managing_org_num.label("org"), dwh_patient.c.patient_num, none)
        .where(dwh_patient.c.managing_org_level == level)
        .where(dwh_patient.c.managing_org_num.in_(nums))
    ]
    for table in (dwh_patient_stay, dwh_patient_mvt):
        sources.append(
            select(table.c.service_org_num.label("org"), table.c.patient_num, table.c.stay_num)
            .where(table.c.service_org_level == level)
            .where(table.c.service_org_num.in_(nums))
        )
    if level in ("department", "unit"):
        column = dwh_patient_mvt.c[f"{level}_num"]
        sources.append(
            select(
                column.label("org"), dwh_patient_mvt.c.patient_num, dwh_patient_mvt.c.stay_num
            ).where(column.in_(nums))
        )
    facts = union_all(*sources).subquery()
    query = select(
        facts.c.org,
        func.count(facts.c.patient_num.distinct()),
        func.count(facts.c.stay_num.distinct()),
    ).group_by(facts.c.org)
    return {org: (patients, stays) for org, patients, stays in conn.execute(query)}
