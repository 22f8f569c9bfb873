"""Search on the stored types: every parameter is one subquery on `fhir_search_value`,
`resource_num IN (SELECT resource_num ... WHERE type, parameter and <the value's test>)`,
answered by the (type, parameter, column) indexes. Each parameter type only says how one
search value tests the typed columns; `:missing` and `:not` are the same for all.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import and_, false, not_, or_, select, true

from codoc_fhir.resources.base import SearchParam
from codoc_fhir.resources.generic.definitions import ParamDefinition
from codoc_fhir.search import declare
from codoc_fhir.search.model import SearchFilter, SearchValue
from codoc_fhir.search.types import quantity as quantity_search
from codoc_fhir.search.types import reference as reference_search
from codoc_fhir.search.types.date import compare, parse_range
from codoc_fhir.search.types.string import fold_text
from codoc_fhir.search.types.token import split_token
from codoc_fhir.warehouse.schema import fhir_resource, fhir_search_value

values = fhir_search_value.c
ValueTest = Callable[[SearchValue, str | None], Any]  # (value, modifier) -> condition


def indexed(kind: Any, name: str, condition: Any) -> Any:
    """The rows of `kind` having a value of parameter `name` that meets `condition`."""
    matching = select(values.resource_num).where(
        values.resource_type == kind.fhir_type, values.param_name == name, condition
    )
    return fhir_resource.c.resource_num.in_(matching)


def index_builder(name: str, test: ValueTest) -> Callable[[Any, SearchFilter], Any]:
    """The `build` of a parameter: OR of its values' tests, `:missing`, `:not`."""

    def build(kind: Any, search_filter: SearchFilter) -> Any:
        if search_filter.missing is not None:
            present = indexed(kind, name, true())
            return not_(present) if search_filter.missing else present
        modifier = search_filter.modifier
        tests = [test(value, modifier) for value in search_filter.values]
        matches = indexed(kind, name, or_(false(), *tests))
        return not_(matches) if modifier == "not" else matches

    return build


# --- how one value tests the columns, per parameter type -------------------------------


def token_test(value: SearchValue, modifier: str | None) -> Any:
    system, code = split_token(value.text)
    conditions: list[Any] = []
    if system == "":
        conditions.append(values.token_system.is_(None))
    elif system is not None:
        conditions.append(values.token_system == system)
    if code:
        conditions.append(values.token_code == code)
    return and_(true(), *conditions)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def string_test(value: SearchValue, modifier: str | None) -> Any:
    if modifier == "exact":
        return values.string_exact == value.text
    pattern = _escape(fold_text(value.text))
    pattern = f"%{pattern}%" if modifier == "contains" else f"{pattern}%"
    return values.string_value.like(pattern, escape="\\")


def date_test(value: SearchValue, modifier: str | None) -> Any:
    low, high = parse_range(value.text)
    return compare(value.prefix, values.date_start, values.date_end, low, high)


def number_test(value: SearchValue, modifier: str | None) -> Any:
    number, _, _ = quantity_search.parse(value.text)
    return quantity_search.number_clause(value.prefix, values.number_value, number)


def quantity_test(value: SearchValue, modifier: str | None) -> Any:
    number, system, code = quantity_search.parse(value.text)
    conditions = [quantity_search.number_clause(value.prefix, values.number_value, number)]
    if system is not None:
        conditions.append(values.quantity_system == system)
    if code is not None:
        conditions.append(values.quantity_code == code)
    return and_(*conditions)


def reference_test(value: SearchValue, modifier: str | None) -> Any:
    """`Patient/1`, `1` (any type, or the `:Type` modifier's), an absolute URL, `urn:...`."""
    type_name, ident = reference_search.parse(value.text, modifier)
    if modifier and type_name and type_name != modifier:
        return false()
    matches = values.ref_id == ident
    return and_(matches, values.ref_type == type_name) if type_name else matches


def uri_test(value: SearchValue, modifier: str | None) -> Any:
    return values.uri_value == value.text


TESTS: dict[str, ValueTest] = {
    "token": token_test,
    "string": string_test,
    "date": date_test,
    "number": number_test,
    "quantity": quantity_test,
    "reference": reference_test,
    "uri": uri_test,
}


def search_param(param: ParamDefinition) -> SearchParam:
    """The declaration of one R4B parameter, searched through the index table."""
    declared = declare.custom(param.code, param.type, index_builder(param.code, TESTS[param.type]))
    declared.description = param.expression
    if param.targets:
        declared.options["targets"] = param.targets
    return declared


def search_params(params: dict[str, ParamDefinition]) -> dict[str, SearchParam]:
    return {code: search_param(param) for code, param in params.items()}
