"""Organization to FHIR: identifiers, type codings and the read-only counter extensions."""

from __future__ import annotations

from codoc_fhir.fhir import identifiers
from codoc_fhir.resources.data_fact import ORG_LEVEL_SYSTEM as LEVEL_SYSTEM
from codoc_fhir.resources.links import OrgLevel
from codoc_fhir.resources.organization.from_fhir import DERIVED_PREFIX, EXTENSION_BASE
from codoc_fhir.resources.organization.levels import HL7_TYPE_SYSTEM

COUNTERS = ("patient_count", "stay_count", "child_count")


def counter_url(name: str) -> str:
    """The url of a read-only counter extension (`urn:codoc:fhir:extension:patient_count`)."""
    return EXTENSION_BASE + name


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
