"""Builders for search parameter declarations (`search_params` on a resource kind).

A resource module declares its parameters as data, e.g.::

    search_params = {
        **data_fact_params(),
        "date": date("date", dwh_data.c.start_date),
    }

The SQL for each type lives in `codoc_fhir.search.types`; a `build` callable replaces it
when a parameter needs a join or a subquery (a Patient identifier in dwh_patient_ipphist).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Column

from codoc_fhir.search.kind import SearchParam
from codoc_fhir.search.types.token import concept_clause
from codoc_fhir.warehouse.schema import dwh_data

CODESYSTEM_PREFIX = "urn:codoc:fhir:codesystem:"


@dataclass(frozen=True)
class RefTarget:
    """A reference parameter's target: the column holding the number of `fhir_type`
    resources whose FHIR id is `id_prefix` + number (when `where` holds too)."""

    fhir_type: str
    column: Any
    id_prefix: str = ""
    where: Any = None  # for chains: what else says a row points at this type (a level)


def token(
    name: str,
    column: Any,
    *,
    system: str | Callable[[Any], str | None] | None = None,
    system_column: Any = None,
    to_db: Callable[[str], Any] | None = None,
    official: bool = False,
    description: str = "",
) -> SearchParam:
    """A token on one column. `system` is the fixed system of its codes (or a function of
    the kind), `system_column` a column holding it; `to_db` maps a FHIR code to the stored
    value (None: no row can match); `official`: a bare number also matches the official
    identifier (the id)."""
    options: dict[str, Any] = {
        "system": system,
        "system_column": system_column,
        "to_db": to_db,
        "official": official,
    }
    return SearchParam(name, "token", description=description, columns=(column,), options=options)


def reference(name: str, *targets: RefTarget, description: str = "") -> SearchParam:
    """A reference held in one or more columns (one per target type/level)."""
    columns = tuple(target.column for target in targets)
    return SearchParam(name, "reference", target=targets, description=description, columns=columns)


def patient_reference(name: str, column: Any) -> SearchParam:
    return reference(name, RefTarget("Patient", column), description="The patient")


def date(name: str, start: Any, end: Any = None, *, description: str = "") -> SearchParam:
    """A date: an instant column, or a period (start, end; a NULL end is still open)."""
    columns = (start,) if end is None else (start, end)
    return SearchParam(name, "date", description=description, columns=columns)


def string(name: str, *columns: Any, description: str = "") -> SearchParam:
    """A string matched on any of `columns` (case and accent insensitive)."""
    return SearchParam(name, "string", description=description, columns=columns)


def quantity(
    name: str, value: Any, *, system: Any = None, code: Any = None, unit: Any = None
) -> SearchParam:
    """A quantity: the numeric column and the columns of its unit (system, code, display)."""
    options = {"system": system, "code": code, "unit": unit}
    return SearchParam(name, "quantity", columns=(value,), options=options)


def on_element(param: SearchParam, element: str) -> SearchParam:
    """`param` searching the kept codes of `element` (by default the element named like
    the parameter: search/kept_tokens.py)."""
    return replace(param, options={**param.options, "element": element})


def custom(name: str, kind: str, build: Callable[[Any, Any], Any], **options: Any) -> SearchParam:
    """A parameter whose SQL is written by hand: `build(kind, search_filter)`."""
    return SearchParam(name, kind, build=build, options=options)


# --- dwh_data facts (Procedure, MedicationRequest, DiagnosticReport, lab Observation) ------


def concept_code(column: Column, thesaurus: Callable[[Any], str]) -> Callable[[Any, Any], Any]:
    """A token builder on `column` (a thesaurus_data_num) matching concept codes of the
    kind's thesaurus: an indexed EXISTS on dwh_thesaurus_data."""

    def build(kind: Any, search_filter: Any) -> Any:
        return concept_clause(kind, search_filter, column, thesaurus(kind))

    return build


def data_fact_params() -> dict[str, SearchParam]:
    """What every dwh_data-backed kind searches on: subject, patient, code, encounter,
    identifier (the date parameter is declared by each resource, its name differs)."""
    return {
        "subject": patient_reference("subject", dwh_data.c.patient_num),
        "patient": patient_reference("patient", dwh_data.c.patient_num),
        "code": custom(
            "code",
            "token",
            concept_code(dwh_data.c.thesaurus_data_num, lambda kind: kind.thesaurus_code),
            column=dwh_data.c.thesaurus_data_num,
        ),
        "encounter": reference("encounter", RefTarget("Encounter", dwh_data.c.stay_num)),
        "identifier": token("identifier", dwh_data.c.id_data_source, official=True),
    }


def data_fact_performer() -> SearchParam:
    """performer: Organization/department-N or Organization/unit-N."""
    return reference(
        "performer",
        RefTarget("Organization", dwh_data.c.department_num, "department-"),
        RefTarget("Organization", dwh_data.c.unit_num, "unit-"),
    )
