"""The levels of the organisation tree as FHIR names them: the type codes accepted for each
level, the parent columns each level accepts in partOf, and `level_of` a body."""

from __future__ import annotations

from typing import Any

from codoc_fhir.resources.data_fact import ORG_LEVEL_SYSTEM as LEVEL_SYSTEM
from codoc_fhir.resources.links import ORG_LEVELS

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

HL7_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/organization-type"
HL7_CODES = frozenset(level.hl7_code for level in ORG_LEVELS.values() if level.hl7_code)


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


def with_article(label: str) -> str:
    return f"an {label}" if label[0] in "AEIOU" else f"a {label}"
