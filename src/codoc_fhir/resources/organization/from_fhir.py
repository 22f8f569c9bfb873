"""Organization from FHIR: the code kept for an Organization sent without a usable
identifier, and the unit_period extension dates."""

from __future__ import annotations

import hashlib
from datetime import date
from typing import Any

from codoc_fhir.fhir import identifiers
from codoc_fhir.fhir.dates import parse_date, parse_datetime

DERIVED_PREFIX = "~"  # a code the server derived (no usable identifier was sent)
DERIVED_LENGTH = 16

EXTENSION_BASE = "urn:codoc:fhir:extension:"
UNIT_PERIOD_URL = "unit_period"  # as the Codoc documentation writes it
UNIT_PERIOD_URLS = (UNIT_PERIOD_URL, EXTENSION_BASE + UNIT_PERIOD_URL)
COUNTERS = ("patient_count", "stay_count", "child_count")

PARENT_REQUIRED = ("department", "unit")
CODE_LENGTH = {"instance": 30, "site": 30, "department": 30, "unit": 50}


def derived_code(level: str, body: dict[str, Any], parent: dict[str, Any]) -> str:
    """A code for an Organization sent without a usual identifier that fits the column:
    a hash of the identifier that did not fit (system and value), else of the level, the
    name and the parent. The same resource gets the same code on every import; the
    leading `~` tells it from a client's code (it is not answered as an identifier)."""
    first = identifiers.first_usual_pair(body)
    if first is not None:
        source = f"identifier|{first[0] or ''}|{first[1]}"
    else:
        parents = ",".join(f"{column}={num}" for column, num in sorted(parent.items()) if num)
        source = f"name|{level}|{body.get('name')}|{parents}"
    return DERIVED_PREFIX + hashlib.sha256(source.encode()).hexdigest()[:DERIVED_LENGTH]


def period_date(value: Any, field: str) -> date | None:
    """A Period bound -> the calendar date as written (the column is a DATE)."""
    if value is None:
        return None
    parse_datetime(value, field)
    if len(value) >= 10:
        return date.fromisoformat(value[:10])
    return parse_date(value, field)[0].date()
