"""FHIR date and dateTime parsing (input) and formatting (output). Stored in UTC."""

from __future__ import annotations

import re
from contextlib import suppress
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from codoc_fhir.fhir.errors import Invalid

_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")
_DATETIME = re.compile(
    r"^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?"
    r"(Z|[+-]\d{2}:\d{2})?)?)?)?$"
)
PRECISIONS = ("year", "month", "day")


def _invalid(field: str, value: Any, expected: str) -> Invalid:
    return Invalid(
        f"Invalid date format for {field}: {value!r}. Expected {expected}", expression=[field]
    )


def parse_date(value: Any, field: str) -> tuple[datetime, str]:
    """A FHIR `date` (YYYY, YYYY-MM or YYYY-MM-DD) -> (UTC midnight, precision)."""
    match = _DATE.match(value) if isinstance(value, str) else None
    if not match:
        raise _invalid(field, value, "YYYY-MM-DD")
    year, month, day = match.groups()
    try:
        parsed = datetime(int(year), int(month or 1), int(day or 1), tzinfo=UTC)
    except ValueError:
        raise _invalid(field, value, "YYYY-MM-DD") from None
    return parsed, PRECISIONS[sum(1 for part in (month, day) if part)]


def format_date(value: datetime | date | None, precision: str | None = "day") -> str | None:
    if value is None:
        return None
    text = value.strftime("%Y-%m-%d")
    return {"year": text[:4], "month": text[:7]}.get(precision or "day", text)


def parse_datetime(value: Any, field: str) -> datetime:
    """A FHIR `dateTime` or `instant` -> an aware UTC datetime.

    Partial dates are taken at their first instant; a time needs a timezone, as FHIR says.
    """
    match = _DATETIME.match(value) if isinstance(value, str) else None
    if not match:
        raise _invalid(field, value, "YYYY-MM-DDThh:mm:ss+zz:zz")
    year, month, day, hour, _minute, _second, _fraction, zone = match.groups()
    if hour is not None and zone is None:
        raise _invalid(field, value, "a timezone (Z or +hh:mm) with the time")
    try:
        if hour is None:
            return datetime(int(year), int(month or 1), int(day or 1), tzinfo=UTC)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _invalid(field, value, "YYYY-MM-DDThh:mm:ss+zz:zz") from None
    return parsed.astimezone(UTC)


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes: they were stored in UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _utc_zones() -> frozenset[Any]:
    """The tzinfo objects that are UTC at every instant. psycopg hands timestamps back in
    the session's zone, ZoneInfo("Etc/UTC") on a UTC server: converting those to UTC again
    is a no-op that costs a third of a formatting. ZoneInfo caches its instances, so the
    set holds the very objects the driver uses; a system without tzdata has only UTC."""
    zones: set[Any] = {UTC}
    for key in ("UTC", "Etc/UTC"):
        with suppress(ZoneInfoNotFoundError):
            zones.add(ZoneInfo(key))
    return frozenset(zones)


UTC_ZONES = _utc_zones()


def format_datetime(value: datetime | None) -> str | None:
    """ISO 8601 with `Z`, seconds precision unless there are microseconds.

    Every answer formats a few of these (three a resource on average in an export), so
    this is the short path: no conversion when the value is already in a UTC zone, and
    `isoformat()` without arguments, which already drops zero microseconds; a UTC
    isoformat always ends in `+00:00`.
    """
    if value is None:
        return None
    utc = value if value.tzinfo in UTC_ZONES else as_utc(value)
    return utc.isoformat()[:-6] + "Z"


@lru_cache(maxsize=1024)
def _instant_text(value: datetime) -> str:
    return format_datetime(value) or ""


def format_instant(value: datetime | None) -> str | None:
    """A FHIR `instant` (meta.lastUpdated): always with seconds and timezone.

    Remembered for the last thousand values: rows loaded or imported together share their
    update_date, so an export or a search page formats the same few instants again and
    again. Equal datetimes are the same instant (or, naive, the same UTC wall time), so
    they format alike whatever their zone."""
    return None if value is None else _instant_text(value)


def utc_now() -> datetime:
    return datetime.now(UTC)
