"""Opaque keyset cursors for the next/previous links.

A cursor is base64url(JSON) of the sort values of a boundary row, its kind index and its
primary key, the direction, and the sort signature it was made for. The page after it is
"rows strictly after (values..., kind, key) in the search order": rows inserted meanwhile
land before or after the boundary, so each match is answered exactly once.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from codoc_fhir.fhir.errors import Invalid


@dataclass(frozen=True)
class Cursor:
    values: tuple[Any, ...]
    kind_index: int
    key: int
    backwards: bool
    signature: str


def _encode_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"dt": value.isoformat()}
    if isinstance(value, date):
        return {"d": value.isoformat()}
    return value


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict):
        if "dt" in value:
            return datetime.fromisoformat(value["dt"])
        return date.fromisoformat(value["d"])
    return value


def encode(cursor: Cursor) -> str:
    payload = {
        "v": [_encode_value(value) for value in cursor.values],
        "k": cursor.kind_index,
        "p": cursor.key,
        "b": cursor.backwards,
        "s": cursor.signature,
    }
    text = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(text).decode().rstrip("=")


def decode(token: str, signature: str) -> Cursor:
    """The cursor in `token`; 400 when it is not one of ours or was made for another sort."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        payload = json.loads(raw)
        cursor = Cursor(
            tuple(_decode_value(value) for value in payload["v"]),
            int(payload["k"]),
            int(payload["p"]),
            bool(payload["b"]),
            str(payload["s"]),
        )
    except (ValueError, KeyError, TypeError):
        raise Invalid("Invalid paging cursor", expression=["_cursor"]) from None
    if cursor.signature != signature:
        raise Invalid("The paging cursor was made for another sort order", expression=["_cursor"])
    return cursor
