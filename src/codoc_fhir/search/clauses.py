"""The WHERE clause of one resource kind for a search, and the patient restriction."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import and_, true

from codoc_fhir.resources.base import Resource, SearchParam
from codoc_fhir.search.model import SearchFilter, params_of
from codoc_fhir.search.types import date, quantity, reference, string, token

Builder = Callable[[Resource, SearchParam, SearchFilter], Any]
BUILDERS: dict[str, Builder] = {
    "token": token.clause,
    "reference": reference.clause,
    "date": date.clause,
    "string": string.clause,
    "quantity": quantity.clause,
}


def filter_clause(kind: Resource, param: SearchParam, search_filter: SearchFilter) -> Any:
    if param.build is not None:
        return param.build(kind, search_filter)
    return BUILDERS[param.type](kind, param, search_filter)


def kind_where(kind: Resource, filters: Sequence[SearchFilter]) -> Any | None:
    """AND of the kind's scope and every filter; None when the kind lacks a parameter
    (then none of its rows can match)."""
    params = params_of(kind)
    clauses = []
    scope = kind.scope()
    if scope is not None:
        clauses.append(scope)
    for search_filter in filters:
        param = params.get(search_filter.name)
        if param is None or param.type != search_filter.type:
            return None
        clauses.append(filter_clause(kind, param, search_filter))
    return and_(true(), *clauses)


def patient_column(kind: Resource) -> Any | None:
    """The column holding the patient of the kind's rows (None: not patient data).

    The kind says (`Resource.patient_column()`, shared with the security layer); Patient
    itself is its own key.
    """
    if kind.fhir_type == "Patient":
        return kind.key
    method = getattr(kind, "patient_column", None)
    if callable(method):
        return method()
    return kind.table.c.get("patient_num")


def restriction(kind: Resource, patient: int | None, compartment: int | None) -> Any | None:
    """Rows the caller may see: a patient-scoped caller sees only that patient's rows of
    patient data (kinds without a patient are not restricted); a compartment search keeps
    that patient's rows. Returns None when the kind is outside the compartment."""
    column = patient_column(kind)
    clauses = []
    if compartment is not None:
        if column is None:
            return None
        clauses.append(column == compartment)
    if patient is not None and column is not None:
        clauses.append(column == patient)
    return and_(true(), *clauses)
