"""The WHERE clause of one resource kind for a search, and the patient restriction.

Chained and reverse-chained filters (one level) are SQL subqueries on the other table,
`column IN (SELECT key ... WHERE <the other type's filter> AND <patient restriction>)`,
so the database answers them with its indexes, and a patient-scoped caller reaches
nothing of another patient through a chain either.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import and_, false, or_, select, true

from codoc_fhir.search.kept_tokens import KeptCodes, widened
from codoc_fhir.search.kind import SearchKind, SearchParam
from codoc_fhir.search.model import SearchFilter, chain_targets, params_of
from codoc_fhir.search.types import date, quantity, reference, string, token

Builder = Callable[[SearchKind, SearchParam, SearchFilter], Any]
BUILDERS: dict[str, Builder] = {
    "token": token.clause,
    "reference": reference.clause,
    "date": date.clause,
    "string": string.clause,
    "quantity": quantity.clause,
}


def filter_clause(
    kind: SearchKind, param: SearchParam, search_filter: SearchFilter, kept: KeptCodes | None
) -> Any:
    if param.build is not None:
        clause = param.build(kind, search_filter)
    else:
        clause = BUILDERS[param.type](kind, param, search_filter)
    if param.type == "token" and kept is not None:
        return widened(kind, param, search_filter, clause, kept)
    return clause


def kind_where(
    kind: SearchKind,
    filters: Sequence[SearchFilter],
    patient: int | None = None,
    kept: KeptCodes | None = None,
) -> Any | None:
    """AND of the kind's scope and every filter; None when the kind lacks a parameter
    (then none of its rows can match). `patient` restricts the rows chains reach."""
    params = params_of(kind)
    clauses = []
    scope = kind.scope()
    if scope is not None:
        clauses.append(scope)
    for search_filter in filters:
        if search_filter.chain is not None:
            chained = chain_clause(kind, search_filter, patient, kept)
            if chained is None:
                return None
            clauses.append(chained)
            continue
        param = params.get(search_filter.name)
        if param is None or param.type != search_filter.type:
            return None
        clauses.append(filter_clause(kind, param, search_filter, kept))
    return and_(true(), *clauses)


def patient_column(kind: SearchKind) -> Any | None:
    """The column holding the patient of the kind's rows (None: not patient data).

    The kind says (`SearchKind.patient_column()`, shared with the security layer); Patient
    itself is its own key.
    """
    if kind.fhir_type == "Patient":
        return kind.key
    method = getattr(kind, "patient_column", None)
    if callable(method):
        return method()
    return kind.table.c.get("patient_num")


def restriction(kind: SearchKind, patient: int | None, compartment: int | None) -> Any | None:
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


def _kind_at(kinds: Sequence[SearchKind], fhir_type: str, id_prefix: str) -> SearchKind | None:
    for kind in kinds:
        if kind.fhir_type == fhir_type and kind.id_prefix == id_prefix:
            return kind
    return None


def _end_rows(
    other: SearchKind, end: SearchFilter, patient: int | None, kept: KeptCodes | None
) -> Any | None:
    """The WHERE clause of the rows of `other` a chain reaches (None: none can match)."""
    where = kind_where(other, [end], None, kept)
    allowed = restriction(other, patient, None)
    return None if where is None or allowed is None else and_(where, allowed)


def chain_clause(
    kind: SearchKind, search_filter: SearchFilter, patient: int | None, kept: KeptCodes | None
) -> Any | None:
    """`subject:Patient.family=X` on `kind`: its reference column IN the keys of the
    matching targets; `_has:Procedure:subject:code=X`: its key IN the reference column of
    the matching Procedures. None when `kind` has no such reference parameter."""
    chain = search_filter.chain
    assert chain is not None
    if chain.reverse is not None:
        return _reverse_clause(kind, search_filter, patient, kept)
    param = params_of(kind).get(search_filter.name)
    if param is None or param.type != "reference":
        return None
    conditions = []
    for target in chain_targets(param):
        if search_filter.modifier and target.fhir_type != search_filter.modifier:
            continue
        for end, kinds in chain.ends:
            other = _kind_at(kinds, target.fhir_type, target.id_prefix)
            rows = _end_rows(other, end, patient, kept) if other is not None else None
            if other is None or rows is None:
                continue
            link = target.column.in_(select(other.key).where(rows))
            conditions.append(link if target.where is None else and_(target.where, link))
    return or_(false(), *conditions)


def _reverse_clause(
    kind: SearchKind, search_filter: SearchFilter, patient: int | None, kept: KeptCodes | None
) -> Any:
    chain = search_filter.chain
    assert chain is not None and chain.reverse is not None
    ((end, sources),) = chain.ends
    conditions = []
    for source in sources:
        param = params_of(source).get(chain.reverse)
        rows = _end_rows(source, end, patient, kept) if param is not None else None
        if param is None or rows is None:
            continue
        for target in chain_targets(param):
            if (target.fhir_type, target.id_prefix) != (kind.fhir_type, kind.id_prefix):
                continue
            if target.where is not None:
                rows = and_(rows, target.where)
            keys = select(target.column).where(rows, target.column.is_not(None))
            conditions.append(kind.key.in_(keys))
    return or_(false(), *conditions)
