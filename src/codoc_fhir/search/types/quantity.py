"""Quantity parameters: `[prefix]number[|system|code]` on a numeric column.

`eq 5.4` matches values in [5.35, 5.45) (the precision of the value sent), `ap` within
10%; the unit, when given, must match the stored UCUM system and code (or unit text).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import and_, false, or_, true

from codoc_fhir.fhir.errors import Invalid
from codoc_fhir.search.kind import SearchKind, SearchParam
from codoc_fhir.search.model import Prefix, SearchFilter


def parse(text: str) -> tuple[Decimal, str | None, str | None]:
    """(number, system or None, code or None) of a quantity search value."""
    parts = text.split("|")
    if len(parts) not in (1, 3):
        raise Invalid(f"Invalid quantity search value {text!r}: expected number|system|code")
    try:
        number = Decimal(parts[0])
    except InvalidOperation:
        raise Invalid(f"Invalid number in quantity search value {text!r}") from None
    if not number.is_finite():
        raise Invalid(f"Invalid number in quantity search value {text!r}")
    system, code = (parts[1] or None, parts[2] or None) if len(parts) == 3 else (None, None)
    return number, system, code


def number_clause(prefix: Prefix, column: Any, number: Decimal) -> Any:
    """A numeric comparison honouring the precision of `number` for eq/ne."""
    exponent = number.as_tuple().exponent
    half = Decimal(5) * Decimal(10) ** (int(exponent) - 1) if isinstance(exponent, int) else 0
    low, high = float(number - half), float(number + half)
    value = float(number)
    if prefix is Prefix.AP:
        margin = abs(value) / 10
        return and_(column >= value - margin, column <= value + margin)
    rules = {
        Prefix.EQ: and_(column >= low, column < high),
        Prefix.NE: or_(column < low, column >= high),
        Prefix.GT: column > value,
        Prefix.SA: column > value,
        Prefix.LT: column < value,
        Prefix.EB: column < value,
        Prefix.GE: column >= value,
        Prefix.LE: column <= value,
    }
    return rules[prefix]


def clause(kind: SearchKind, param: SearchParam, search_filter: SearchFilter) -> Any:
    """The WHERE clause of a quantity filter on `kind`."""
    column = param.columns[0]
    if search_filter.missing is not None:
        return column.is_(None) if search_filter.missing else column.is_not(None)
    conditions = []
    for value in search_filter.values:
        number, system, code = parse(value.text)
        conditions.append(
            and_(number_clause(value.prefix, column, number), _unit(param, system, code))
        )
    return or_(false(), *conditions)


def _unit(param: SearchParam, system: str | None, code: str | None) -> Any:
    options = param.options
    conditions = []
    if system is not None:
        conditions.append(
            options["system"] == system if options.get("system") is not None else false()
        )
    if code is not None:
        columns = [options[name] for name in ("code", "unit") if options.get(name) is not None]
        conditions.append(or_(false(), *(column == code for column in columns)))
    return and_(true(), *conditions) if conditions else true()
