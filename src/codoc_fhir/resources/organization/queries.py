"""Read-side SQL of the organisation tree: the counters answered as extensions (computed
in a few batch queries) and the conditions telling which rows refer to an organisation."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    Table,
    and_,
    cast,
    exists,
    func,
    null,
    or_,
    select,
    union_all,
)

from codoc_fhir.config import Settings
from codoc_fhir.resources.base import Referrer
from codoc_fhir.resources.concepts import fact_referrer
from codoc_fhir.resources.links import ORG_LEVELS
from codoc_fhir.resources.organization.levels import PARENT_COLUMNS
from codoc_fhir.warehouse.schema import (
    dwh_document,
    dwh_document_author,
    dwh_patient,
    dwh_patient_mvt,
    dwh_patient_stay,
)


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


def at_level(level_column: str, level: str) -> Any:
    return lambda table: table.c[level_column] == level


def not_service_org(level: str, column: str) -> Any:
    """Movements already counted through their service organisation are not counted twice."""
    return lambda table: or_(
        table.c.service_org_level.is_(None),
        table.c.service_org_level != level,
        table.c.service_org_num.is_(None),
        table.c.service_org_num != table.c[column],
    )


def authored_by(level: str) -> Any:
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


def tree_referrers(settings: Settings, name: str) -> list[Referrer]:
    """What refers to an organisation of level `name`: its children first, then every
    resource pointing at it (what a delete must find none of)."""
    found: list[Referrer] = [
        Referrer(ORG_LEVELS[child].table, column, ORG_LEVELS[child].label)
        for child, parents in PARENT_COLUMNS.items()
        for parent, column in parents.items()
        if parent == name
    ]
    found += [
        Referrer(
            dwh_patient,
            "managing_org_num",
            "Patient",
            where=at_level("managing_org_level", name),
        ),
        Referrer(
            dwh_patient_stay,
            "service_org_num",
            "Encounter",
            where=at_level("service_org_level", name),
        ),
        Referrer(
            dwh_patient_mvt,
            "service_org_num",
            "Encounter",
            where=at_level("service_org_level", name),
        ),
    ]
    column = f"{name}_num"
    if name in ("department", "unit"):
        found += [
            Referrer(dwh_patient_mvt, column, "Encounter", where=not_service_org(name, column)),
            Referrer(dwh_document, column, "DocumentReference"),
            fact_referrer(settings, column),
        ]
    found.append(
        Referrer(dwh_document_author, "org_num", "DocumentReference", where=authored_by(name))
    )
    return found
