"""Concepts of the thesauri: finding (or creating) the concept a coded fact is bound to."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

from sqlalchemy import Connection, bindparam, select

from codoc_fhir.fhir.dates import utc_now
from codoc_fhir.fhir.errors import Invalid, Required
from codoc_fhir.resources import lookups
from codoc_fhir.resources.base import Referrer
from codoc_fhir.warehouse.db import insert_if_absent
from codoc_fhir.warehouse.schema import dwh_data, dwh_thesaurus, dwh_thesaurus_data

CODESYSTEM_URL_PREFIX = "urn:codoc:fhir:codesystem:"


class Concept(NamedTuple):
    """The parts of a concept a coded resource answers."""

    thesaurus_code: str
    concept_code: str
    concept_str: str


def codesystem_url(thesaurus_code: str) -> str:
    return f"{CODESYSTEM_URL_PREFIX}{thesaurus_code}"


def first_coding(concept: Any, field: str) -> dict[str, Any]:
    """coding[0] of a CodeableConcept, which must carry a code."""
    codings = concept.get("coding") if isinstance(concept, dict) else None
    if not codings or not isinstance(codings[0], dict) or not codings[0].get("code"):
        raise Required(f"Field '{field}.coding[0].code' is required", expression=[field])
    return codings[0]


def ensure_thesaurus(conn: Connection, thesaurus_code: str) -> None:
    """Create the thesaurus row on first use."""
    values = {
        "thesaurus_code": thesaurus_code,
        "name": thesaurus_code,
        "label": thesaurus_code,
        "update_date": utc_now(),
        "row_version": 1,
    }
    insert_if_absent(conn, dwh_thesaurus, values, ["thesaurus_code"])


def resolve_concept(
    conn: Connection,
    thesaurus_code: str,
    concept: Any,
    field: str,
    *,
    strict: bool,
) -> int:
    """The thesaurus_data_num for the CodeableConcept `concept` in `thesaurus_code`.

    A code the thesaurus lacks is created with the display as its label, unless `strict`.
    A coding whose system names another Codoc thesaurus is refused.
    """
    coding = first_coding(concept, field)
    code = str(coding["code"])
    system = coding.get("system")
    if (
        system
        and system.startswith(CODESYSTEM_URL_PREFIX)
        and system != codesystem_url(thesaurus_code)
    ):
        raise Invalid(
            f"{field}.coding[0].system must be {codesystem_url(thesaurus_code)}",
            expression=[f"{field}.coding[0].system"],
        )
    found = _concept_num(conn, thesaurus_code, code)
    if found is not None:
        return found
    if strict:
        raise Invalid(
            f"Code {code!r} does not exist in thesaurus {thesaurus_code}",
            expression=[f"{field}.coding[0].code"],
        )
    ensure_thesaurus(conn, thesaurus_code)
    values = {
        "thesaurus_code": thesaurus_code,
        "concept_code": code,
        "concept_str": coding.get("display") or concept.get("text") or code,
        "update_date": utc_now(),
        "row_version": 1,
    }
    insert_if_absent(conn, dwh_thesaurus_data, values, ["thesaurus_code", "concept_code"])
    created = _concept_num(conn, thesaurus_code, code)
    assert created is not None  # inserted now, or by the concurrent writer we waited for
    return created


# Built once: a statement built per call costs more to build than to run (a create, an
# import look up one per coded element; docs/PERFORMANCE.md, create).
CONCEPT_QUERY = select(dwh_thesaurus_data.c.thesaurus_data_num).where(
    dwh_thesaurus_data.c.thesaurus_code == bindparam("thesaurus"),
    dwh_thesaurus_data.c.concept_code == bindparam("code"),
)


def _concept_num(conn: Connection, thesaurus_code: str, code: str) -> int | None:
    """The concept's number, remembered for a batch of creates (resources/lookups.py)."""

    def load() -> int | None:
        found = conn.execute(CONCEPT_QUERY, {"thesaurus": thesaurus_code, "code": code}).scalar()
        return None if found is None else int(found)

    return lookups.found(("concept", thesaurus_code, code), load)


# The columns of a concept its resources answer (`codeable_concept`).
_CONCEPT_ROW = (
    dwh_thesaurus_data.c.thesaurus_data_num,
    dwh_thesaurus_data.c.thesaurus_code,
    dwh_thesaurus_data.c.concept_code,
    dwh_thesaurus_data.c.concept_str,
)


def prefetch_concepts(conn: Connection, thesaurus_code: str, concepts: Iterable[Any]) -> None:
    """Find the concepts of these CodeableConcepts (their first coding's code) in one query,
    for the batch's `resolve_concept` to find them in its look-ups (lookups.py) instead of
    one query each. Malformed ones are skipped: their mapping reports them."""
    codes = set()
    for concept in concepts:
        codings = concept.get("coding") if isinstance(concept, dict) else None
        first = codings[0] if isinstance(codings, list) and codings else None
        if isinstance(first, dict) and first.get("code"):
            codes.add(str(first["code"]))
    if not codes or not lookups.active():
        return
    query = select(*_CONCEPT_ROW).where(
        dwh_thesaurus_data.c.thesaurus_code == thesaurus_code,
        lookups.among(conn, dwh_thesaurus_data.c.concept_code, sorted(codes)),
    )
    for row in conn.execute(query):
        lookups.remember(("concept", thesaurus_code, row.concept_code), row.thesaurus_data_num)
        lookups.remember(("concept row", row.thesaurus_data_num), row)


def concepts_by_num(conn: Connection, nums: Iterable[int]) -> dict[int, Any]:
    """Concept rows keyed by thesaurus_data_num, in one query for those a batch's prefetch
    (`prefetch_concepts`) has not already read."""
    wanted = {num for num in nums if num is not None}
    found = {num: lookups.cached(("concept row", num)) for num in wanted}
    rows = {num: row for num, row in found.items() if row is not None}
    missing = wanted - rows.keys()
    if missing:
        query = select(*_CONCEPT_ROW).where(dwh_thesaurus_data.c.thesaurus_data_num.in_(missing))
        rows.update((row.thesaurus_data_num, row) for row in conn.execute(query))
    return rows


def codeable_concept(concept_row: Any) -> dict[str, Any]:
    """A CodeableConcept answered for a thesaurus concept."""
    return {
        "coding": [
            {
                "system": codesystem_url(concept_row.thesaurus_code),
                "code": concept_row.concept_code,
                "display": concept_row.concept_str,
            }
        ]
    }


def fact_resource_name(settings: Any, thesaurus_code: str) -> str:
    """The FHIR resource a `dwh_data` row is served as, from its thesaurus ('Data' if none)."""
    bound = {
        settings.thesaurus_procedure: "Procedure",
        settings.thesaurus_medication: "MedicationRequest",
        settings.thesaurus_diagnostic: "DiagnosticReport",
        settings.thesaurus_observation: "Observation",
        settings.thesaurus_condition: "Condition",
    }
    return bound.get(thesaurus_code, "Data")


def fact_referrer(settings: Any, column: str) -> Referrer:
    """dwh_data rows pointing at a resource through `column`, named by their thesaurus."""
    return Referrer(
        dwh_data,
        column,
        lambda code: fact_resource_name(settings, code),
        group_by="thesaurus_code",
    )
