"""Search parameter declarations of Encounter, DocumentReference, Observation phenotype and
CodeSystem (resource modules take them in one class attribute each)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, exists, false, not_, or_, select, true

from codoc_fhir.fhir.errors import Invalid
from codoc_fhir.fhir.references import key_number
from codoc_fhir.search import declare, fulltext
from codoc_fhir.search.declare import RefTarget
from codoc_fhir.search.kind import SearchParam
from codoc_fhir.search.model import SearchFilter
from codoc_fhir.search.types import reference as reference_search
from codoc_fhir.search.types.token import split_token
from codoc_fhir.warehouse.schema import (
    dwh_document,
    dwh_enrsem,
    dwh_thesaurus,
    dwh_thesaurus_data,
)

ENCOUNTER_STATUS_SYSTEM = "http://hl7.org/fhir/encounter-status"
ACT_CODE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
DOCUMENT_STATUS_SYSTEM = "http://hl7.org/fhir/document-reference-status"
ORG_PREFIXES = ("instance", "site", "department", "unit")


def never_set(kind: Any, search_filter: SearchFilter) -> Any:
    """A parameter this kind has no value for: only `:missing=true` matches."""
    return true() if search_filter.missing else false()


def organization_reference(name: str, level_column: Any, num_column: Any) -> SearchParam:
    """A reference parameter to an Organization of any level kept as (level, number)
    columns; chains reach each level's table through `chain_targets`."""
    targets = tuple(
        RefTarget("Organization", num_column, f"{level}-", where=level_column == level)
        for level in ORG_PREFIXES
    )
    build = organization_pair(level_column, num_column)
    return declare.custom(name, "reference", build, chain_targets=targets)


def organization_pair(level_column: Any, num_column: Any) -> Any:
    """A reference to an Organization of any level kept as (level, number) columns."""

    def build(kind: Any, search_filter: SearchFilter) -> Any:
        if search_filter.missing is not None:
            return num_column.is_(None) if search_filter.missing else num_column.is_not(None)
        conditions = []
        for value in search_filter.values:
            type_name, ident = reference_search.parse(value.text, search_filter.modifier)
            level, _, number = ident.partition("-")
            if (type_name or "Organization").lower() != "organization":
                continue
            num = key_number(number)
            if level in ORG_PREFIXES and num is not None:
                conditions.append((level_column == level) & (num_column == num))
        return or_(false(), *conditions)

    return build


def encounter_params(table: Table, identifier_column: str, movement: bool) -> dict[str, Any]:
    """Encounter stays (`movement=False`) or movements: subject, patient, status, class,
    date (the period), part-of, service-provider, identifier."""
    columns = table.c
    part_of = (
        declare.reference("part-of", RefTarget("Encounter", columns.stay_num))
        if movement
        else declare.custom("part-of", "reference", never_set)
    )
    return {
        "subject": declare.patient_reference("subject", columns.patient_num),
        "patient": declare.patient_reference("patient", columns.patient_num),
        "status": declare.token("status", columns.status, system=ENCOUNTER_STATUS_SYSTEM),
        "class": declare.token("class", columns.class_code, system=ACT_CODE_SYSTEM),
        "date": declare.date("date", columns.entry_date, columns.out_date),
        "part-of": part_of,
        "service-provider": organization_reference(
            "service-provider", columns.service_org_level, columns.service_org_num
        ),
        "identifier": declare.token("identifier", columns[identifier_column], official=True),
    }


def document_params() -> dict[str, SearchParam]:
    """DocumentReference: subject, patient, date, encounter, status, identifier, and
    `_content`, full-text search of the plain text (search/fulltext.py)."""
    columns = dwh_document.c
    return {
        "subject": declare.patient_reference("subject", columns.patient_num),
        "patient": declare.patient_reference("patient", columns.patient_num),
        "date": declare.date("date", columns.document_date),
        "encounter": declare.reference("encounter", RefTarget("Encounter", columns.stay_num)),
        "status": declare.token("status", columns.status, system=DOCUMENT_STATUS_SYSTEM),
        "identifier": declare.token("identifier", columns.id_doc_source, official=True),
        "_content": declare.custom("_content", "string", fulltext.content_clause),
    }


def _phenotype_encounter(kind: Any, search_filter: SearchFilter) -> Any:
    """A phenotype's encounter is its document's stay: document_num IN (documents of it)."""
    stays = declare.reference("encounter", RefTarget("Encounter", dwh_document.c.stay_num))
    documents = select(dwh_document.c.document_num).where(
        reference_search.clause(kind, stays, search_filter)
    )
    if search_filter.missing:
        return dwh_enrsem.c.document_num.in_(
            select(dwh_document.c.document_num).where(dwh_document.c.stay_num.is_(None))
        )
    return dwh_enrsem.c.document_num.in_(documents)


def boolean_token(true_value: Any, false_value: Any) -> Any:
    """A `true`/`false` token stored as two column values; anything else is a 400."""

    def to_db(code: str) -> Any:
        if code not in ("true", "false"):
            raise Invalid(f"Expected true or false, not {code!r}")
        return true_value if code == "true" else false_value

    return to_db


def phenotype_params() -> dict[str, SearchParam]:
    """Observation phenotype: subject, patient, code, date, encounter, derived-from,
    identifier, the qualifiers negation / hypothesis / family (`true`/`false`) and
    value-string (the text found); value-quantity is declared but a phenotype has none."""
    columns = dwh_enrsem.c
    return {
        "negation": declare.token(
            "negation",
            columns.certainty,
            to_db=boolean_token(-1, 1),
            description="true: a negated mention",
        ),
        "hypothesis": declare.token(
            "hypothesis",
            columns.hypothesis,
            to_db=boolean_token(True, False),
            description="true: a hypothetical mention",
        ),
        "family": declare.token(
            "family",
            columns.context,
            to_db=boolean_token("family_text", "patient_text"),
            description="true: a mention about the patient's family",
        ),
        "value-string": declare.string(
            "value-string", columns.concept_str_found, description="The text found"
        ),
        "subject": declare.patient_reference("subject", columns.patient_num),
        "patient": declare.patient_reference("patient", columns.patient_num),
        "code": declare.custom(
            "code",
            "token",
            declare.concept_code(columns.thesaurus_data_num, lambda kind: kind.thesaurus_code),
            column=columns.thesaurus_data_num,
        ),
        "date": declare.date("date", columns.document_date),
        "encounter": declare.custom("encounter", "reference", _phenotype_encounter),
        "derived-from": declare.reference(
            "derived-from", RefTarget("DocumentReference", columns.document_num)
        ),
        "value-quantity": declare.custom("value-quantity", "quantity", never_set),
        "identifier": declare.token("identifier", columns.id_enrsem_source, official=True),
    }


def _codesystem_url(kind: Any, search_filter: SearchFilter) -> Any:
    code = dwh_thesaurus.c.thesaurus_code
    if search_filter.missing is not None:
        return false() if search_filter.missing else true()
    wanted = [
        value.text.removeprefix(declare.CODESYSTEM_PREFIX)
        for value in search_filter.values
        if value.text.startswith(declare.CODESYSTEM_PREFIX)
    ]
    return code.in_(wanted) if wanted else false()


def _codesystem_code(kind: Any, search_filter: SearchFilter) -> Any:
    """CodeSystems having a concept with one of the codes (indexed on (thesaurus, code))."""
    concept = dwh_thesaurus_data.c
    if search_filter.missing is not None:
        return false() if search_filter.missing else true()
    codes = [split_token(value.text)[1] for value in search_filter.values]
    matches = exists().where(
        concept.thesaurus_code == dwh_thesaurus.c.thesaurus_code, concept.concept_code.in_(codes)
    )
    return not_(matches) if search_filter.modifier == "not" else matches


def codesystem_params() -> dict[str, SearchParam]:
    """CodeSystem: url, name (name or title), code (a concept code), identifier (the code)."""
    columns = dwh_thesaurus.c
    return {
        "url": declare.custom("url", "uri", _codesystem_url, column=columns.thesaurus_code),
        "name": declare.string("name", columns.name, columns.label, columns.thesaurus_code),
        "title": declare.string("title", columns.label),
        "code": declare.custom("code", "token", _codesystem_code),
        "identifier": declare.token("identifier", columns.thesaurus_code),
    }
