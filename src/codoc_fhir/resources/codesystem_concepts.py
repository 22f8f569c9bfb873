"""The concepts of a thesaurus (`dwh_thesaurus_data` rows): checks, writes and answers.

Used by the CodeSystem resource (concept[] in its body) and by the concept sub-routes.
A concept still used by a fact (`dwh_data`) or an NLP finding (`dwh_enrsem`) cannot go.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, Select, func, select
from sqlalchemy.engine import Row

from codoc_fhir.fhir.dates import utc_now
from codoc_fhir.fhir.errors import Conflict, Duplicate, Invalid, NotFound, Required
from codoc_fhir.fhir.references import key_number
from codoc_fhir.fhir.validation import check_length
from codoc_fhir.resources.concepts import codesystem_url, fact_resource_name
from codoc_fhir.warehouse.schema import dwh_data, dwh_enrsem, dwh_thesaurus, dwh_thesaurus_data

CONCEPT_KEYS = {"resourceType", "id", "code", "display", "definition", "system", "designation"}
_LIMITS = {"code": 100, "display": 2000, "definition": 4000}
table = dwh_thesaurus_data


# --- input ----------------------------------------------------------------------------------


def _text(item: dict[str, Any], name: str, field: str, *, required: bool) -> str | None:
    value = item.get(name)
    if value is None or value == "":
        if required:
            raise Required(f"Field '{field}.{name}' is required", expression=[f"{field}.{name}"])
        return None
    if not isinstance(value, str) or value != value.strip():
        raise Invalid(
            f"{field}.{name} must be a string without surrounding spaces",
            expression=[f"{field}.{name}"],
        )
    return str(check_length(value, _LIMITS[name], f"{field}.{name}"))


def parse_concept(item: Any, field: str, *, code_required: bool = True) -> dict[str, Any]:
    """A concept as sent ({"code", "display", "definition"}) -> column values."""
    if not isinstance(item, dict):
        raise Invalid(f"{field} must be an object with code and display", expression=[field])
    if item.get("concept"):
        raise Invalid(
            f"{field}: nested concepts are not supported, send a flat list", expression=[field]
        )
    return {
        "concept_code": _text(item, "code", field, required=code_required),
        "concept_str": _text(item, "display", field, required=True),
        "description": _text(item, "definition", field, required=False),
        **parse_designations(item.get("designation"), f"{field}.designation"),
    }


def parse_designations(items: Any, field: str) -> dict[str, Any]:
    """designation[] (synonyms: `value`, optional `language` and `use`) -> the JSON kept
    and the values searched (one a line)."""
    if items is None or items == []:
        return {"designation_json": None, "designation_text": None}
    if not isinstance(items, list):
        raise Invalid(f"{field} must be a list", expression=[field])
    kept = []
    for position, item in enumerate(items):
        where = f"{field}[{position}]"
        value = item.get("value") if isinstance(item, dict) else None
        if not isinstance(value, str) or not value.strip():
            raise Required(f"Field '{where}.value' is required", expression=[f"{where}.value"])
        unknown = sorted(set(item) - {"language", "use", "value"})
        if unknown:
            raise Invalid(f"Unknown {where} element(s): {', '.join(unknown)}", expression=[where])
        if not isinstance(item.get("language", ""), str) or not isinstance(
            item.get("use", {}), dict
        ):
            raise Invalid(f"{where}: language is a code, use a Coding", expression=[where])
        kept.append(item)
    text = check_length("\n".join(item["value"] for item in kept), 4000, field)
    return {"designation_json": orjson.dumps(kept).decode(), "designation_text": text}


def designations(row: Any) -> list[dict[str, Any]]:
    return list(orjson.loads(row.designation_json)) if row.designation_json else []


def check_concept_body(body: Any, thesaurus_code: str) -> None:
    """A concept sent to the concept routes: its own keys only, of this thesaurus."""
    if not isinstance(body, dict):
        raise Invalid("The request body must be a JSON object")
    unknown = sorted(set(body) - CONCEPT_KEYS)
    if unknown:
        raise Invalid(f"Unknown concept element(s): {', '.join(unknown)}", expression=unknown)
    if body.get("resourceType", "CodeSystemConcept") != "CodeSystemConcept":
        raise Invalid(
            f"resourceType must be CodeSystemConcept, got {body['resourceType']!r}",
            expression=["resourceType"],
        )
    if body.get("system") not in (None, codesystem_url(thesaurus_code)):
        raise Invalid(f"system must be {codesystem_url(thesaurus_code)}", expression=["system"])


# --- reads ------------------------------------------------------------------------------------


def concepts_of(conn: Connection, codes: Iterable[str]) -> dict[str, list[Row]]:
    """The concepts of each thesaurus, in creation order, in one query."""
    wanted = set(codes)
    found: dict[str, list[Row]] = {code: [] for code in wanted}
    if not wanted:
        return found
    query = (
        select(table).where(table.c.thesaurus_code.in_(wanted)).order_by(table.c.thesaurus_data_num)
    )
    for row in conn.execute(query):
        found[row.thesaurus_code].append(row)
    return found


def find_concept(conn: Connection, thesaurus_code: str, key: str, *, lock: bool = False) -> Row:
    """The concept a key names: its code, else its number; 404 when neither matches.

    With `lock` (a write follows), the row stays locked until the transaction ends, so an
    If-Match check and the write that follows it cannot interleave with another writer's.
    """
    in_thesaurus = select(table).where(table.c.thesaurus_code == thesaurus_code)
    if lock:
        in_thesaurus = in_thesaurus.with_for_update()
    row = conn.execute(in_thesaurus.where(table.c.concept_code == key)).first()
    concept_num = key_number(key)
    if row is None and concept_num is not None:
        row = conn.execute(in_thesaurus.where(table.c.thesaurus_data_num == concept_num)).first()
    if row is None:
        raise NotFound(f"Concept {key} does not exist in CodeSystem {thesaurus_code}")
    return row


# --- answers ----------------------------------------------------------------------------------


def concept_element(row: Row) -> dict[str, Any]:
    """A CodeSystem.concept element; its `id` is the concept's number."""
    element = {"id": str(row.thesaurus_data_num), "code": row.concept_code}
    element["display"] = row.concept_str
    if row.description:
        element["definition"] = row.description
    if row.designation_json:
        element["designation"] = designations(row)
    return element


def concept_json(row: Row) -> dict[str, Any]:
    """A concept as the concept routes answer it: the element plus its system."""
    return {**concept_element(row), "system": codesystem_url(row.thesaurus_code)}


# --- writes -----------------------------------------------------------------------------------


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
