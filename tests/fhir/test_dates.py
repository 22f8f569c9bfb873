"""The output formatting of fhir/dates.py: the short path (values already in a UTC zone,
`isoformat()` without arguments, a memo for instants) answers what the plain conversion
answers, for every zone, precision and type it is handed."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from codoc_fhir.fhir.dates import format_date, format_datetime, format_instant


def plain(value: datetime) -> str:
    """The reference: convert to UTC, then seconds or microseconds, `Z` for the zone."""
    utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    text = utc.isoformat(timespec="microseconds" if utc.microsecond else "seconds")
    return text.replace("+00:00", "Z")


ZONES = [
    UTC,
    timezone(timedelta(0)),
    ZoneInfo("UTC"),
    ZoneInfo("Etc/UTC"),  # what psycopg hands back on a UTC server
    ZoneInfo("Europe/Paris"),
    timezone(timedelta(hours=-5, minutes=-30)),
    None,  # SQLite: naive, stored in UTC
]


@pytest.mark.parametrize("zone", ZONES, ids=str)
@pytest.mark.parametrize("microsecond", [0, 1, 120000, 999999])
def test_datetimes_in_any_zone_format_as_the_plain_conversion(zone, microsecond):
    for value in (
        datetime(2020, 3, 4, 18, 4, 0, microsecond, tzinfo=zone),
        datetime(2021, 7, 1, 0, 0, 59, microsecond, tzinfo=zone),  # summer time in Paris
        datetime(1, 1, 1, 12, 0, 0, microsecond, tzinfo=zone),
        datetime(9999, 12, 31, 5, 0, 0, microsecond, tzinfo=zone),
    ):
        assert format_datetime(value) == plain(value)
        assert format_instant(value) == plain(value)


def test_examples():
    paris = ZoneInfo("Europe/Paris")
    assert format_datetime(datetime(2020, 3, 4, 18, 4, tzinfo=ZoneInfo("Etc/UTC"))) == (
        "2020-03-04T18:04:00Z"
    )
    assert format_datetime(datetime(2020, 3, 4, 18, 4, 5, 7, tzinfo=UTC)) == (
        "2020-03-04T18:04:05.000007Z"
    )
    assert format_datetime(datetime(2021, 7, 1, 1, 30, tzinfo=paris)) == "2021-06-30T23:30:00Z"
    assert format_datetime(datetime(2020, 3, 4, 18, 4)) == "2020-03-04T18:04:00Z"  # naive


def test_none_formats_as_none():
    assert format_datetime(None) is None
    assert format_instant(None) is None
    assert format_date(None) is None


def test_equal_instants_in_other_zones_share_the_memo_and_its_text():
    """The instant memo is keyed by datetime equality: the same instant in another zone
    is equal, and its UTC text is the same; a naive value never equals an aware one."""
    utc = datetime(2022, 1, 2, 3, 4, 5, tzinfo=UTC)
    paris = utc.astimezone(ZoneInfo("Europe/Paris"))
    naive_wall = datetime(2022, 1, 2, 4, 4, 5)  # Paris's wall time, taken as UTC
    assert format_instant(utc) == format_instant(paris) == "2022-01-02T03:04:05Z"
    assert format_instant(naive_wall) == "2022-01-02T04:04:05Z"


@pytest.mark.parametrize(
    ("precision", "expected"),
    [("year", "2019"), ("month", "2019-07"), ("day", "2019-07-14"), (None, "2019-07-14")],
)
def test_dates_format_to_their_precision(precision, expected):
    assert format_date(date(2019, 7, 14), precision) == expected
    assert format_date(datetime(2019, 7, 14, 23, 0, tzinfo=UTC), precision) == expected
