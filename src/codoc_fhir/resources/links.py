"""Resolving references in incoming bodies against the warehouse (400 when missing).

Shared by every resource mapping: patients, stays, documents and organisations of any
level. Organisation names for answered references are batch-loaded here too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import Connection, Table, bindparam, select

from codoc_fhir.fhir.errors import Invalid, ReferenceNotFound
from codoc_fhir.fhir.references import (
    key_number,
    parse_reference,
    reference_dict,
    reference_target,
)
from codoc_fhir.resources import lookups
from codoc_fhir.warehouse.schema import (
    dwh_document,
    dwh_patient,
    dwh_patient_mvt,
    dwh_patient_stay,
    dwh_thesaurus_department,
    dwh_thesaurus_site,
    dwh_thesaurus_unit,
    hospital_instance,
)


@dataclass(frozen=True)
class OrgLevel:
    """One level of the organisation tree and the table that holds it."""

    name: str  # instance | site | department | unit
    label: str  # Instance | Site | Department | Unit
    table: Table
    key: str
    code_column: str
    name_column: str
    hl7_code: str | None
    hl7_display: str | None


ORG_LEVELS: dict[str, OrgLevel] = {
    level.name: level
    for level in (
        OrgLevel("instance", "Instance", hospital_instance, "id", "code", "name", None, None),
        OrgLevel(
            "site",
            "Site",
            dwh_thesaurus_site,
            "site_num",
            "site_code",
            "site_str",
            "prov",
            "Healthcare Provider",
        ),
        OrgLevel(
            "department",
            "Department",
            dwh_thesaurus_department,
            "department_num",
            "department_code",
            "department_str",
            "dept",
            "Hospital Department",
        ),
        OrgLevel(
            "unit",
            "Unit",
            dwh_thesaurus_unit,
            "unit_num",
            "unit_code",
            "unit_str",
            "team",
            "Organizational team",
        ),
    )
}


_LEVEL_ORDER = ("unit", "department", "site", "instance")


@cache
def _existence_query(table: Table, key: str) -> Any:
    """`SELECT key FROM table WHERE key = :wanted`, built once per table: a create asks
    two or three of these, and building the statement (and its cache key) each time cost
    more than running it (docs/PERFORMANCE.md, create)."""
    return select(table.c[key]).where(table.c[key] == bindparam("wanted"))


def _exists(conn: Connection, table: Table, key: str, num: int, *, guarded: bool = False) -> bool:
    """Whether the row exists (remembered for a batch of creates, resources/lookups.py);
    taken as found, with no query, when the caller stores `num` in a column whose foreign
    key will refuse it (`guarded`) and the work trusts those keys (lookups.py)."""
    if guarded and lookups.key_trusted():
        return True

    def load() -> bool | None:
        found = conn.execute(_existence_query(table, key), {"wanted": num}).first()
        return True if found is not None else None

    return bool(lookups.found((table.name, num), load))


def _row(conn: Connection, query: Callable[[], Any], key: tuple[Any, ...]) -> Any:
    """The first row of the query `query()` builds (or None), remembered for a batch under
    `key` (the query is only built when asked: a cached answer costs a dict look-up)."""
    return lookups.found(key, lambda: conn.execute(query()).first())


def _number(ident: str, field: str) -> int:
    num = key_number(ident)
    if num is None:
        raise Invalid(f"Invalid id {ident!r} in {field}", expression=[field])
    return num


def patient_num(
    conn: Connection, value: Any, field: str = "subject", *, guarded: bool = False
) -> int:
    """The patient a `Patient/N` reference names; 400 not-found when there is none.
    `guarded`: the caller stores it in a column with a foreign key to dwh_patient."""
    num = _number(parse_reference(value, field, ("Patient",)).id, field)
    if not _exists(conn, dwh_patient, "patient_num", num, guarded=guarded):
        raise ReferenceNotFound(f"Patient with ID {num} does not exist", expression=[field])
    return num


def prefetch_patients(conn: Connection, values: Iterable[Any]) -> None:
    """Find the patients of these references in one query, for `patient_num` to find them
    in the batch's look-ups (lookups.py) instead of one query each."""
    nums = set()
    for value in values:
        target = reference_target(value)
        if target is not None and target[0] == "Patient" and key_number(target[1]) is not None:
            nums.add(key_number(target[1]))
    if not nums or not lookups.active():
        return
    column = dwh_patient.c.patient_num
    for (num,) in conn.execute(select(column).where(lookups.among(conn, column, nums))):
        lookups.remember((dwh_patient.name, num), True)


def stay_num(conn: Connection, value: Any, field: str, patient: int | None) -> int:
    """The stay an `Encounter/N` reference names, which must belong to `patient`."""
    ident = parse_reference(value, field, ("Encounter",)).id
    if ident.startswith("movement-"):
        raise Invalid(f"{field} must reference a stay, not a movement", expression=[field])
    num = _number(ident, field)
    stays = dwh_patient_stay.c
    row = _row(conn, lambda: select(stays.patient_num).where(stays.stay_num == num), ("stay", num))
    if row is None:
        raise ReferenceNotFound(f"Stay with ID {num} does not exist", expression=[field])
    if patient is not None and row.patient_num != patient:
        raise Invalid(f"Stay {num} belongs to another patient than the subject", expression=[field])
    return num


def stay_of_encounter(conn: Connection, value: Any, field: str, patient: int | None) -> int:
    """The stay an encounter reference stands for: `Encounter/N` is the stay itself,
    `Encounter/movement-N` the stay that movement belongs to (a fact is recorded per stay;
    the movement reference itself is kept with the row and answered as sent)."""
    ident = parse_reference(value, field, ("Encounter",)).id
    if not ident.startswith("movement-"):
        return stay_num(conn, value, field, patient)
    num = _number(ident.removeprefix("movement-"), field)
    moves = dwh_patient_mvt.c
    row = _row(
        conn,
        lambda: select(moves.stay_num, moves.patient_num).where(moves.mvt_num == num),
        ("movement", num),
    )
    if row is None:
        raise ReferenceNotFound(f"Movement with ID {num} does not exist", expression=[field])
    if patient is not None and row.patient_num != patient:
        raise Invalid(
            f"Movement {num} belongs to another patient than the subject", expression=[field]
        )
    return int(row.stay_num)


def movement_of(value: Any) -> int | None:
    """The movement number an `Encounter/movement-N` reference names (None otherwise)."""
    target = reference_target(value)
    if target is None or not target[1].startswith("movement-"):
        return None
    return key_number(target[1].removeprefix("movement-"))


def document_num(conn: Connection, value: Any, field: str, patient: int | None) -> Any:
    """The document a `DocumentReference/N` names (its row), of the same patient."""
    num = _number(parse_reference(value, field, ("DocumentReference",)).id, field)
    row = conn.execute(
        select(
            dwh_document.c.document_num, dwh_document.c.patient_num, dwh_document.c.document_date
        ).where(dwh_document.c.document_num == num)
    ).first()
    if row is None:
        raise ReferenceNotFound(
            f"DocumentReference with ID {num} does not exist", expression=[field]
        )
    if patient is not None and row.patient_num != patient:
        raise Invalid(
            f"DocumentReference {num} belongs to another patient than the subject",
            expression=[field],
        )
    return row


def parse_org_id(ident: str, field: str) -> tuple[OrgLevel, int]:
    """`department-3` -> (the department level, 3)."""
    level_name, _, number = ident.partition("-")
    level, num = ORG_LEVELS.get(level_name), key_number(number)
    if level is None or num is None:
        raise Invalid(
            f"Invalid Organization id {ident!r} in {field}: expected instance-N, site-N, "
            "department-N or unit-N",
            expression=[field],
        )
    return level, num


def organization(
    conn: Connection, value: Any, field: str, levels: Iterable[str] = tuple(ORG_LEVELS)
) -> tuple[OrgLevel, int]:
    """The organisation an `Organization/<level>-N` reference names, of an allowed level.

    A bare `Organization/N` (as some Codoc pages write) names level N of the most specific
    allowed level (a unit where units are allowed).
    """
    allowed = tuple(levels)
    ident = parse_reference(value, field, ("Organization",)).id
    bare = key_number(ident)
    if bare is not None:
        level = ORG_LEVELS[min(allowed, key=_LEVEL_ORDER.index)]
        if not _exists(conn, level.table, level.key, bare):
            raise ReferenceNotFound(
                f"Organization with ID {ident} does not exist (a bare number names "
                f"{level.name}-{ident}; ids are instance-N, site-N, department-N or unit-N)",
                expression=[field],
            )
        return level, bare
    level, num = parse_org_id(ident, field)
    if level.name not in allowed:
        raise Invalid(
            f"{field} must be an Organization of level {' or '.join(allowed)}, got {level.name}",
            expression=[field],
        )
    if not _exists(conn, level.table, level.key, num):
        raise ReferenceNotFound(f"{level.label} with ID {num} does not exist", expression=[field])
    return level, num


def warehouse_organization(conn: Connection, value: Any, field: str) -> tuple[OrgLevel, int] | None:
    """The level and number of the warehouse Organization a reference names, or None when
    it names none: no reference, a display- or identifier-only one, a conditional or
    `urn:uuid:` one, or an Organization outside the four levels (stored whole). Those are
    kept with the row as sent (CONTRACT 9). A reference in the warehouse's own form
    (`Organization/site-4`, a bare number) must still name an existing one (400)."""
    if not names_warehouse_organization(value, field):
        return None
    return organization(conn, value, field)


def names_warehouse_organization(value: Any, field: str) -> bool:
    """Whether a Reference names an Organization of the hospital tree (`Organization/site-4`,
    a bare number, an absolute URL ending so); 400 when it names another resource type."""
    if not isinstance(value, dict) or not isinstance(value.get("reference"), str):
        return False
    if WAREHOUSE_ORGANIZATION.search(value["reference"]):
        return True
    if OTHER_TYPE.search(value["reference"]):
        parse_reference(value, field, ("Organization",))  # 400: another type named
    return False


# `Organization/site-4`, `organization/4`, an absolute URL ending so (not `Organization?..`).
WAREHOUSE_ORGANIZATION = re.compile(
    r"(?:^|/)[Oo]rganization/(?:(?:instance|site|department|unit)-)?[0-9]{1,18}/?$"
)
# A relative `Type/id` reference to another resource type than Organization.
OTHER_TYPE = re.compile(r"^(?![Oo]rganization/)[A-Za-z]+/[A-Za-z0-9\-\.]{1,64}$")


def column_organization(
    conn: Connection, value: Any, field: str, levels: Iterable[str], *, guarded: bool = False
) -> tuple[OrgLevel, int] | None:
    """The organisation of an allowed level a performer / author reference gives a column,
    or None when it gives none: a Practitioner, PractitionerRole, RelatedPerson, Patient or
    Device, an Organization of another level or outside the four levels (payer, external
    lab), a reference with only a display. Those are kept with the row and answered as sent
    (CONTRACT section 9); an Organization of the four levels must still exist (400).
    `guarded`: the caller stores the organisation returned in a column with a foreign key
    to its level's table (one of another level is returned as None: still looked up)."""
    target = reference_target(value)
    if target is None or target[0].lower() != "organization":
        return None
    ident = target[1]
    level_name, _, number = ident.partition("-")
    if key_number(ident) is not None:
        return organization(conn, value, field, levels)  # bare number: the documented form
    if level_name not in ORG_LEVELS or key_number(number) is None:
        return None
    level, num = parse_org_id(ident, field)
    stored = level.name in levels
    if not _exists(conn, level.table, level.key, num, guarded=guarded and stored):
        raise ReferenceNotFound(f"{level.label} with ID {num} does not exist", expression=[field])
    return (level, num) if stored else None


def organization_names(
    conn: Connection, pairs: Iterable[tuple[str | None, int | None]]
) -> dict[tuple[str, int], str]:
    """Names of the (level, number) organisations, one query per level."""
    wanted: dict[str, set[int]] = {}
    for level_name, num in pairs:
        if level_name and num is not None:
            wanted.setdefault(level_name, set()).add(num)
    names: dict[tuple[str, int], str] = {}
    for level_name, nums in wanted.items():
        level = ORG_LEVELS[level_name]
        key, name = level.table.c[level.key], level.table.c[level.name_column]
        for num, text in conn.execute(select(key, name).where(key.in_(nums))):
            names[(level_name, num)] = text
    return names


def organization_reference(
    level_name: str, num: int, names: dict[tuple[str, int], str]
) -> dict[str, Any]:
    return reference_dict("Organization", f"{level_name}-{num}", names.get((level_name, num)))
