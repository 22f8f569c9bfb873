"""Patient search parameters (identifier, family, given, name, gender, birthdate, deceased,
organization), as indexed SQL on dwh_patient and dwh_patient_ipphist, and the warehouse
coding of gender and death they share with the Patient mapping.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import exists, false, not_, or_

from codoc_fhir.fhir.references import key_number
from codoc_fhir.resources.base import SearchParam
from codoc_fhir.search import declare
from codoc_fhir.search.catalog import organization_reference
from codoc_fhir.search.types.token import split_token
from codoc_fhir.warehouse.schema import dwh_patient, dwh_patient_ipphist

GENDER_SYSTEM = "http://hl7.org/fhir/administrative-gender"
GENDER_TO_SEX = {"male": "M", "female": "F", "other": "O", "unknown": None}
SEX_TO_GENDER = {"M": "male", "F": "female", "O": "other"}
DEATH_CODE = "d"


def identifier_clause(kind: Any, search_filter: Any) -> Any:
    """identifier=[system|]value: an indexed EXISTS on dwh_patient_ipphist (a bare number
    also matches the official identifier, the id)."""
    ipphist = dwh_patient_ipphist.c
    if search_filter.missing is not None:
        return false() if search_filter.missing else dwh_patient.c.patient_num.is_not(None)
    conditions = []
    for value in search_filter.values:
        system, code = split_token(value.text)
        if system == "":
            continue  # every IPP has a system
        parts = [ipphist.patient_num == dwh_patient.c.patient_num]
        if system:
            parts.append(ipphist.origin_patient_id == system)
        if code:
            parts.append(ipphist.hospital_patient_id == code)
        condition: Any = exists().where(*parts)
        official = key_number(code) if system is None else None
        if official is not None:
            condition = or_(condition, dwh_patient.c.patient_num == official)
        conditions.append(condition)
    matches = or_(false(), *conditions)
    return not_(matches) if search_filter.modifier == "not" else matches


def gender_clause(kind: Any, search_filter: Any) -> Any:
    """gender=male|female|other|unknown on sex (unknown: null or empty)."""
    sex = dwh_patient.c.sex
    if search_filter.missing is not None:
        return false() if search_filter.missing else sex.is_(None) | sex.is_not(None)
    conditions = []
    for value in search_filter.values:
        system, code = split_token(value.text)
        if system not in (None, GENDER_SYSTEM) or code not in GENDER_TO_SEX:
            continue
        stored = GENDER_TO_SEX[code]
        conditions.append(sex == stored if stored else or_(sex.is_(None), sex == ""))
    matches = or_(false(), *conditions)
    return not_(matches) if search_filter.modifier == "not" else matches


def deceased_clause(kind: Any, search_filter: Any) -> Any:
    """deceased=true|false on death_code."""
    death = dwh_patient.c.death_code
    wanted = {value.text.split("|")[-1] for value in search_filter.values}
    dead, alive = death == DEATH_CODE, or_(death.is_(None), death != DEATH_CODE)
    matches = or_(
        false(), *([dead] if "true" in wanted else []), *([alive] if "false" in wanted else [])
    )
    return not_(matches) if search_filter.modifier == "not" else matches


PATIENT_SEARCH: dict[str, SearchParam] = {
    "identifier": declare.custom("identifier", "token", identifier_clause),
    "family": declare.string("family", dwh_patient.c.lastname),
    "given": declare.string("given", dwh_patient.c.firstname),
    "name": declare.string(
        "name", dwh_patient.c.lastname, dwh_patient.c.firstname, dwh_patient.c.maiden_name
    ),
    "gender": declare.custom("gender", "token", gender_clause, column=dwh_patient.c.sex),
    "birthdate": declare.date("birthdate", dwh_patient.c.birth_date),
    "deceased": declare.custom("deceased", "token", deceased_clause),
    "organization": organization_reference(
        "organization", dwh_patient.c.managing_org_level, dwh_patient.c.managing_org_num
    ),
}
