"""Date parameters: prefixes eq ne gt lt ge le sa eb ap over implicit ranges.

A search value is a range: `2024` is the whole year, `2024-03-05T10:00` that minute. A
resource value is a range too: an instant column is [t, t]; a period has a start and an end
column (an empty end is an open period). The prefixes compare both ranges as FHIR says
(eq: the value's range holds the resource's; gt: the resource goes on after the value's
range...). Times without a timezone are taken as UTC.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, false, not_, or_

from codoc_fhir.fhir.errors import Invalid
from codoc_fhir.search.kind import SearchKind, SearchParam
from codoc_fhir.search.model import Prefix, SearchFilter

_DATE = re.compile(
    r"^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d{1,6})?)?"
    r"(Z|[+-]\d{2}:\d{2})?)?)?)?$"
)


def _next_month(start: datetime, months: int) -> datetime:
    month = start.month - 1 + months
    return start.replace(year=start.year + month // 12, month=month % 12 + 1)


def parse_range(text: str) -> tuple[datetime, datetime]:
    """[start, end) in UTC of a FHIR search date value.

    A `+` left unencoded in a URL arrives as a space: `T10:00:00 02:00` is read as +02:00.
    """
    text = re.sub(r" (\d{2}:\d{2})$", r"+\1", text)
    match = _DATE.match(text)
    if not match:
        raise Invalid(
            f"Invalid date format for search value {text!r}. Expected YYYY[-MM[-DD[Thh:mm[:ss]]]]"
        )
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        if hour is None:
            start = datetime(int(year), int(month or 1), int(day or 1), tzinfo=UTC)
            if day:
                return start, start + timedelta(days=1)
            return start, _next_month(start, 1 if month else 12)
        base = f"{year}-{month}-{day}T{hour}:{minute}:{second or '00'}{fraction or ''}"
        start = datetime.fromisoformat(base + (zone or "Z").replace("Z", "+00:00"))
    except ValueError:
        raise Invalid(f"Invalid date in search value {text!r}") from None
    if second is None:
        step = timedelta(minutes=1)
    elif fraction:
        step = timedelta(seconds=10 ** -(len(fraction) - 1))
    else:
        step = timedelta(seconds=1)
    start = start.astimezone(UTC)
    return start, start + step


def clause(kind: SearchKind, param: SearchParam, search_filter: SearchFilter) -> Any:
    """The WHERE clause of a date filter on `kind`."""
    start = param.columns[0]
    end = param.columns[1] if len(param.columns) > 1 else None
    if search_filter.missing is not None:
        return start.is_(None) if search_filter.missing else start.is_not(None)
    conditions = []
    for value in search_filter.values:
        low, high = parse_range(value.text)
        conditions.append(compare(value.prefix, start, end, low, high))
    return or_(false(), *conditions)


def compare(prefix: Prefix, start: Any, end: Any, low: datetime, high: datetime) -> Any:
    """SearchKind range [start, end] against the value range [low, high)."""
    if end is None:
        return _instant(prefix, start, low, high)
    return _PERIOD_RULES[prefix](start, end, low, high)


# One rule per prefix, built only for the prefix asked: building every rule's expression for
# each value made the date clauses the costliest part of a search's statement.
_PERIOD_RULES: dict[Prefix, Any] = {
    Prefix.EQ: lambda start, end, low, high: and_(start >= low, end.is_not(None), end < high),
    Prefix.NE: lambda start, end, low, high: not_(and_(start >= low, end.is_not(None), end < high)),
    Prefix.GT: lambda start, end, low, high: or_(end.is_(None), end >= high),
    Prefix.LT: lambda start, end, low, high: start < low,
    Prefix.GE: lambda start, end, low, high: or_(start >= low, end.is_(None), end >= high),
    Prefix.LE: lambda start, end, low, high: or_(start < low, and_(end.is_not(None), end < high)),
    Prefix.SA: lambda start, end, low, high: start >= high,
    Prefix.EB: lambda start, end, low, high: and_(end.is_not(None), end < low),
    Prefix.AP: lambda start, end, low, high: _approximate_period(start, end, low, high),
}


def _approximate_period(start: Any, end: Any, low: datetime, high: datetime) -> Any:
    wide_low, wide_high = _approximate(low, high)
    return and_(start < wide_high, or_(end.is_(None), end >= wide_low))


def _instant(prefix: Prefix, column: Any, low: datetime, high: datetime) -> Any:
    if prefix is Prefix.AP:
        low, high = _approximate(low, high)
    return _INSTANT_RULES[prefix](column, low, high)


_INSTANT_RULES: dict[Prefix, Any] = {
    Prefix.EQ: lambda column, low, high: and_(column >= low, column < high),
    Prefix.AP: lambda column, low, high: and_(column >= low, column < high),
    Prefix.NE: lambda column, low, high: or_(column < low, column >= high),
    Prefix.GT: lambda column, low, high: column >= high,
    Prefix.SA: lambda column, low, high: column >= high,
    Prefix.LT: lambda column, low, high: column < low,
    Prefix.EB: lambda column, low, high: column < low,
    Prefix.GE: lambda column, low, high: column >= low,
    Prefix.LE: lambda column, low, high: column < high,
}


def _approximate(low: datetime, high: datetime) -> tuple[datetime, datetime]:
    """`ap`: the value's range widened by 10% of its distance to now (one day at least)."""
    margin = max(abs(datetime.now(UTC) - low) / 10, timedelta(days=1))
    return low - margin, high + margin
