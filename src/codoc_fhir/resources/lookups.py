"""A per-batch cache of the look-ups a mapping does for each resource.

A mapping checks its references one resource at a time (the patient of `subject`, the
concept of `code`, an organisation unit): right for one request, but a batch of 500
Observations of 100 patients and five codes would ask the same 600 questions 1,000 times.
Inside `batch()` (Resource.create_many), the look-up places (links.py, concepts.py) ask
here first; outside it every call goes to the database as before.

Only what was found is remembered: a row found stays found for the batch (the import
deletes nothing; a concurrent delete is caught by the foreign keys of the insert, which
makes the batch fall back to one resource at a time). A miss is asked again, since the
batch itself may create it (a concept). The cache lives as long as the batch's savepoint:
a rolled-back batch discards it with the rows it described.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from sqlalchemy import Column, Connection, any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY

T = TypeVar("T")


class Trust:
    """Whether work inside `foreign_keys_trusted` skipped a look-up (`skipped`): a refusal of
    work that skipped none is already the contract's answer and needs no second run."""

    skipped = False


_CACHE: ContextVar[dict[Hashable, Any] | None] = ContextVar("codoc_lookups", default=None)
_KEYS_TRUSTED: ContextVar[Trust | None] = ContextVar("codoc_keys_trusted", default=None)


@contextmanager
def batch(cache: dict[Hashable, Any] | None = None) -> Iterator[dict[Hashable, Any]]:
    """Cache look-ups until the block ends (nested blocks share the outer cache), in
    `cache` when given: the fast create's, which outlives its blocks and whose entries its
    statement re-checks (resources/fast_create.py)."""
    if _CACHE.get() is not None:
        yield _CACHE.get() or {}
        return
    cache = {} if cache is None else cache
    token = _CACHE.set(cache)
    try:
        yield cache
    finally:
        _CACHE.reset(token)


@contextmanager
def foreign_keys_trusted() -> Iterator[Trust]:
    """Inside the block, a reference whose key lands in a column with a foreign key is not
    looked up first (`key_trusted`): the INSERT's foreign key refuses a missing one.

    That is a query less per reference on a create, which a create makes two or three of.
    The refusal is not the contract's answer (a 400 naming the element): the caller runs the
    work again outside the block on a refusal after a skipped look-up, and the look-up
    answers the missing row (interactions/database.py, `Engined.run_write_trusting_keys`).
    Only for work that owns its transaction, so that running it again starts from nothing.
    """
    trust = Trust()
    token = _KEYS_TRUSTED.set(trust)
    try:
        yield trust
    finally:
        _KEYS_TRUSTED.reset(token)


def key_trusted() -> bool:
    """Whether a guarded reference is taken as found without a query (and is then recorded
    as a skipped look-up)."""
    trust = _KEYS_TRUSTED.get()
    if trust is None:
        return False
    trust.skipped = True
    return True


def active() -> bool:
    return _CACHE.get() is not None


def found(key: Hashable, load: Callable[[], T | None]) -> T | None:
    """`load()`, remembered for the batch when it found something (not None)."""
    cache = _CACHE.get()
    if cache is None:
        return load()
    if key in cache:
        return cache[key]
    value = load()
    if value is not None:
        cache[key] = value
    return value


def known(key: Hashable, load: Callable[[], T | None]) -> T | None:
    """`load()`, remembered for the batch even when it found nothing: only for a question
    whose answer the batch itself cannot change before it is asked again (the owner of an
    identifier: the batch's own identifiers are distinct, Patient.check_batch)."""
    cache = _CACHE.get()
    if cache is None:
        return load()
    if key not in cache:
        cache[key] = load()
    return cache[key]


def cached(key: Hashable) -> Any:
    """What the batch has remembered under `key` (None outside a batch or when nothing is)."""
    cache = _CACHE.get()
    return None if cache is None else cache.get(key)


def remember_all(values: dict[Hashable, Any]) -> None:
    """Record what a prefetch found and what it did not find (None): see `known`."""
    cache = _CACHE.get()
    if cache is not None:
        cache.update(values)


def remember(key: Hashable, value: Any) -> None:
    """Record what a batch prefetch found (ignored outside a batch)."""
    cache = _CACHE.get()
    if cache is not None and value is not None:
        cache[key] = value


def among(conn: Connection, column: Column, values: Iterable[Any]) -> Any:
    """`column IN (values)`: on PostgreSQL `column = ANY(:array)`, one parameter whatever
    the count (one statement text for the server to plan, no 500-parameter statements)."""
    wanted = list(values)
    if conn.dialect.name == "postgresql":
        return column == any_(bindparam(None, wanted, type_=ARRAY(column.type)))
    return column.in_(wanted)
