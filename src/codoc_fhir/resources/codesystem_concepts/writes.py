"""Thesaurus concept writes: inserts, updates and deletes of dwh_thesaurus_data rows, the
thesaurus touched with them. A concept still used by a fact (`dwh_data`) or an NLP finding
(`dwh_enrsem`) cannot go."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Select, func, select
from sqlalchemy.engine import Row

from codoc_fhir.fhir.dates import utc_now
from codoc_fhir.fhir.errors import Conflict, Duplicate, Invalid
from codoc_fhir.resources.codesystem_concepts.from_fhir import parse_concept
from codoc_fhir.resources.codesystem_concepts.queries import concepts_of
from codoc_fhir.resources.concepts import fact_resource_name
from codoc_fhir.warehouse.schema import dwh_data, dwh_enrsem, dwh_thesaurus
from codoc_fhir.warehouse.schema import dwh_thesaurus_data as table


def touch_thesaurus(conn: Connection, thesaurus_code: str) -> None:
    """A concept changed: the CodeSystem gets a new version."""
    conn.execute(
        dwh_thesaurus.update()
        .where(dwh_thesaurus.c.thesaurus_code == thesaurus_code)
        .values(row_version=dwh_thesaurus.c.row_version + 1, update_date=utc_now())
    )


def insert_concepts(
    conn: Connection, thesaurus_code: str, items: Sequence[Any], field: str = "concept"
) -> list[int]:
    """Add concepts, all or none: a code repeated in the list or already there is a 409."""
    parsed = [parse_concept(item, f"{field}[{n}]") for n, item in enumerate(items)]
    seen: set[str] = set()
    for position, values in enumerate(parsed):
        if values["concept_code"] in seen:
            raise Duplicate(
                f"Concept code {values['concept_code']} is repeated in the request",
                expression=[f"{field}[{position}].code"],
            )
        seen.add(values["concept_code"])
    existing = conn.execute(
        select(table.c.concept_code).where(
            table.c.thesaurus_code == thesaurus_code, table.c.concept_code.in_(seen)
        )
    ).scalars()
    taken = sorted(existing)
    if taken:
        raise Duplicate(
            f"Concept code(s) already in CodeSystem {thesaurus_code}: {', '.join(taken)}",
            expression=[field],
        )
    now = utc_now()
    return [
        int(
            conn.execute(
                table.insert()
                .values(thesaurus_code=thesaurus_code, update_date=now, row_version=1, **values)
                .returning(table.c.thesaurus_data_num)
            ).scalar_one()
        )
        for values in parsed
    ]


def update_concept(conn: Connection, row: Row, body: dict[str, Any]) -> None:
    """Replace a concept's display/definition (and code, unless another concept has it)."""
    values = parse_concept(body, "concept", code_required=False)
    if body.get("id") not in (None, str(row.thesaurus_data_num)):
        raise Invalid(
            f"The id in the body ({body['id']}) differs from the concept's "
            f"({row.thesaurus_data_num})",
            expression=["id"],
        )
    code = values["concept_code"] or row.concept_code
    clash = conn.execute(
        select(table.c.thesaurus_data_num).where(
            table.c.thesaurus_code == row.thesaurus_code,
            table.c.concept_code == code,
            table.c.thesaurus_data_num != row.thesaurus_data_num,
        )
    ).scalar()
    if clash is not None:
        raise Duplicate(
            f"Concept code {code} already exists in CodeSystem {row.thesaurus_code}",
            expression=["code"],
        )
    conn.execute(
        table.update()
        .where(table.c.thesaurus_data_num == row.thesaurus_data_num)
        .values(
            concept_code=code,
            concept_str=values["concept_str"],
            description=values["description"],
            designation_json=values["designation_json"],
            designation_text=values["designation_text"],
            update_date=utc_now(),
            row_version=table.c.row_version + 1,
        )
    )


def usage(conn: Connection, settings: Any, concept_nums: Select) -> str:
    """'2 Procedure, 1 Observation': the rows still using any of the concepts ('' if none)."""
    counts: dict[str, int] = {}
    facts = (
        select(dwh_data.c.thesaurus_code, func.count())
        .where(dwh_data.c.thesaurus_data_num.in_(concept_nums))
        .group_by(dwh_data.c.thesaurus_code)
    )
    for thesaurus_code, count in conn.execute(facts):
        name = fact_resource_name(settings, thesaurus_code)
        counts[name] = counts.get(name, 0) + count
    findings = conn.execute(
        select(func.count()).where(dwh_enrsem.c.thesaurus_data_num.in_(concept_nums))
    ).scalar_one()
    if findings:
        counts["Observation"] = counts.get("Observation", 0) + findings
    return ", ".join(f"{count} {name}" for name, count in counts.items())


def refuse_if_used(conn: Connection, settings: Any, concept_nums: Select, what: str) -> None:
    """409 naming the users when facts or findings still use any of the concepts."""
    users = usage(conn, settings, concept_nums)
    if users:
        raise Conflict(f"{what} is used by {users}")


def delete_concepts(conn: Connection, settings: Any, rows: Sequence[Row]) -> None:
    """Delete concepts nothing uses; a used one (or a parent of others) is a 409."""
    if not rows:
        return
    nums = [row.thesaurus_data_num for row in rows]
    for row in rows:
        only = select(table.c.thesaurus_data_num).where(
            table.c.thesaurus_data_num == row.thesaurus_data_num
        )
        refuse_if_used(conn, settings, only, f"Concept {row.concept_code}")
    children = conn.execute(
        select(table.c.concept_code).where(
            table.c.thesaurus_parent_num.in_(nums), table.c.thesaurus_data_num.not_in(nums)
        )
    ).scalars()
    orphans = sorted(children)
    if orphans:
        raise Conflict(f"Concepts {', '.join(orphans)} have a parent that would be deleted")
    conn.execute(table.delete().where(table.c.thesaurus_data_num.in_(nums)))


def replace_concepts(
    conn: Connection, settings: Any, thesaurus_code: str, items: Sequence[Any]
) -> None:
    """Make the thesaurus's concepts exactly `items`: update, add, delete unused others."""
    wanted: dict[str, int] = {}
    for position, item in enumerate(items):
        code = parse_concept(item, f"concept[{position}]")["concept_code"]
        if code in wanted:
            raise Duplicate(
                f"Concept code {code} is repeated in the request",
                expression=[f"concept[{position}].code"],
            )
        wanted[code] = position
    current = concepts_of(conn, [thesaurus_code])[thesaurus_code]
    kept = {row.concept_code: row for row in current if row.concept_code in wanted}
    delete_concepts(conn, settings, [row for row in current if row.concept_code not in wanted])
    for code, row in kept.items():
        item = items[wanted[code]]
        sent = parse_concept(item, f"concept[{wanted[code]}]")
        stored = (row.concept_str, row.description, row.designation_json)
        if stored != (sent["concept_str"], sent["description"], sent["designation_json"]):
            update_concept(conn, row, {"code": code, **item, "id": None})
    new = [item for item in items if item.get("code") not in kept]
    insert_concepts(conn, thesaurus_code, new)
