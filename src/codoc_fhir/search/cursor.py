"""Opaque keyset cursors for the next/previous links.

A cursor holds the sort values of a boundary row, its kind index and its primary key, the
direction, and the signature (type and sort) it was made for. The page after it is "rows
strictly after (values..., kind, key) in the search order": rows inserted meanwhile land
before or after the boundary, so each match is answered exactly once.

Sort values are patient data (a family name, a birth date) and cursors end up in URLs,
hence in access logs: a cursor is that JSON encrypted and authenticated (Fernet). Only
the server can read one, and a tampered or foreign cursor is a 400, never a query. The
key is CODOC_CURSOR_KEY, or else a random secret stored in the database (table
fhir_server_secret, created by whichever worker starts first): every worker, restart and
host serving the same database reads the same one.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

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


def fernet_for(secret: str) -> Fernet:
    """The cipher for a secret of any length (a Fernet key is 32 bytes, base64url)."""
    digest = hashlib.sha256(b"codoc-fhir paging cursor\0" + secret.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


class CursorCodec:
    """Encrypts and authenticates cursors with one key."""

    def __init__(self, secret: str | None = None) -> None:
        self.fernet = fernet_for(secret) if secret else Fernet(Fernet.generate_key())

    def encode(self, cursor: Cursor) -> str:
        payload = {
            "v": [_encode_value(value) for value in cursor.values],
            "k": cursor.kind_index,
            "p": cursor.key,
            "b": cursor.backwards,
            "s": cursor.signature,
        }
        text = json.dumps(payload, separators=(",", ":")).encode()
        return self.fernet.encrypt(text).decode().rstrip("=")

    def decode(self, token: str, signature: str) -> Cursor:
        """The cursor in `token`; 400 when it is not one of ours or was made for another
        search (another type or sort order)."""
        try:
            raw = self.fernet.decrypt(token + "=" * (-len(token) % 4))
            payload = json.loads(raw)
            cursor = Cursor(
                tuple(_decode_value(value) for value in payload["v"]),
                int(payload["k"]),
                int(payload["p"]),
                bool(payload["b"]),
                str(payload["s"]),
            )
        except (InvalidToken, ValueError, KeyError, TypeError):
            raise Invalid("Invalid paging cursor", expression=["_cursor"]) from None
        if cursor.signature != signature:
            message = "The paging cursor was made for another sort order or resource type"
            raise Invalid(message, expression=["_cursor"])
        return cursor
