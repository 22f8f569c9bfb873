"""Plain searches in one round trip on the fast read's async pool (PostgreSQL), no HTTP here.

The generic search (search/execute.py `run_search`) runs in the thread pool on synchronous
SQLAlchemy: BEGIN, a count, the page's keys, the page's rows, ROLLBACK. For a search of a
kind answered in one row (resources/fast_read.py) filtered only by references and dates
(`subject`, `patient`, `date`), one statement answers it all:

    <the kind's base_query() columns>, count(*) OVER ()
    WHERE <kind_where(...)> AND <restriction(...)>   -- the search machinery's own clauses
    ORDER BY key LIMIT count + 1                      -- the generic order of one kind

The window count is taken before the LIMIT: it is the total the generic count query finds.
Only one patient's matches are searched here (a patient-confined caller or a one-valued
`subject`/`patient`): the window and the sort see every match before the LIMIT. When the
page fits CODOC_MAX_PAGE_BYTES, its rows are rendered with the kind's `render` into the
generic search's SearchResult, with the next link's cursor made as the generic search makes
it (the key of the page's last row), so the Bundle the caller builds with `searchset` is the
generic one and the next page is the generic search's. Anything else (a page over its byte
budget, another parameter type, a sort, an include, a cursor, a subset) answers None here
and the generic search answers it.

Compiled SQL is cached per statement shape, keyed by SQLAlchemy's own cache keys (the
structure of a statement without its values; `_generate_cache_key`, what the Engine's
compiled cache uses) of the two clauses that vary, and the values of each request are
taken from those keys' bound parameters (`construct_params(extracted_parameters=...)`),
with the base query's and the limit's kept from the shape's first statement. Measured on
the bench's subject+date statement: compiling it costs about 1.3 ms a request; the key of
the whole statement was a seventh of a search's CPU, the clauses' keys are less.
SQLAlchemy's async engine would cache the same way but needs greenlet (not installed) and
adds a pool, a pre-ping and a transaction per statement, which the fast read's autocommit
pool avoids. Statements with values expanded at execution time (`IN` lists) are not cached
and answer None: only reference and date clauses get here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func
from sqlalchemy.dialects.postgresql import psycopg as postgresql_psycopg
from sqlalchemy.engine import RowMapping
from sqlalchemy.sql.compiler import Compiled, SQLCompiler

from codoc_fhir.resources.base import Resource
from codoc_fhir.resources.fast_read import NO_CONNECTION, FastReader, answers_in_one_row
from codoc_fhir.search.clauses import kind_where, restriction
from codoc_fhir.search.cursor import Cursor, CursorCodec
from codoc_fhir.search.execute import ENVELOPE_BYTES, SearchResult, encoded_size, signature
from codoc_fhir.search.model import SearchRequest

TOTAL_COLUMN = "fast_search_total"
PLAIN_TYPES = frozenset({"reference", "date"})  # built without a connection (no kept codes)
PATIENT_PARAMS = frozenset({"subject", "patient"})
MAX_SHAPES = 256  # compiled statements kept per process (query shapes are few; bounded anyway)
DIALECT = postgresql_psycopg.dialect()


def is_plain(request: SearchRequest) -> bool:
    """Whether the search is one the fast search may answer: reference and date filters
    only (no chain, no modifier), the default order, a first page of resources, whole."""
    return (
        not request.sort
        and not request.includes
        and not request.revincludes
        and not request.summary_count
        and request.summary == "false"
        and request.elements is None
        and request.cursor is None
        and request.count > 0
        and all(
            item.chain is None and item.modifier is None and item.type in PLAIN_TYPES
            for item in request.filters
        )
    )


def one_patient(request: SearchRequest, patient: int | None) -> bool:
    """Whether the matches are at most one patient's: a caller confined to a patient, or a
    one-valued `subject`/`patient` filter. The window count and the sort run over every
    match before the LIMIT, so a search over the whole table (`date=ge2000`) would build
    all its joined rows only to be handed on; the generic search counts it on the keys."""
    return patient is not None or any(
        item.name in PATIENT_PARAMS and len(item.values) == 1 for item in request.filters
    )


def runs_as_compiled(compiled: Compiled) -> bool:
    """Whether the compiled SQL and its raw values are what the Engine would send: no
    value expanded at execution (`IN` lists: POSTCOMPILE) and no type converting a value
    on its way in (a bind processor, which the Engine applies and this pool would not)."""
    if not isinstance(compiled, SQLCompiler):
        return False
    return "POSTCOMPILE" not in compiled.string and not compiled._bind_processors


@dataclass(frozen=True)
class Filtered:
    """A search of one kind: its clauses (`kind_where`, `restriction`) and its LIMIT."""

    kind: Resource
    where: Any
    allowed: Any
    limit: int


class FastSearcher:
    """The compiled search statements of one process, run on the FastReader's pool."""

    def __init__(self, reader: FastReader) -> None:
        self.reader = reader
        self.bases: dict[int, Any] = {}  # id(kind) -> base_query with the window count
        # (kind, the clauses' cache keys, limit) -> compiled SQL, values around the clauses'
        self.shapes: dict[Any, tuple[Compiled, list[Any], list[Any]]] = {}
        self.served = 0  # searches answered by the fast path (tests check it was taken)

    def _base(self, kind: Resource) -> Any:
        found = self.bases.get(id(kind))
        if found is None:
            count = func.count().over().label(TOTAL_COLUMN)
            found = self.bases[id(kind)] = kind.base_query().add_columns(count)
        return found

    def statement(
        self, kinds: Sequence[Resource], request: SearchRequest, patient: int | None
    ) -> Filtered | None:
        """The one kind that can match and its clauses; None when none or several can
        (several kinds are a UNION the generic search orders by kind), or when that kind
        is not answered in one row."""
        branches = []
        for kind in kinds:
            where = kind_where(kind, request.filters, patient, None)
            allowed = restriction(kind, patient, None)
            if where is not None and allowed is not None:
                branches.append(Filtered(kind, where, allowed, request.count + 1))
        if len(branches) != 1 or not answers_in_one_row(branches[0].kind):
            return None
        return branches[0]

    def sql(self, filtered: Filtered) -> tuple[str, dict[str, Any]] | None:
        """The statement's SQL (compiled once per shape) and this request's values.

        The shape is told by the cache keys of the two clauses alone: the kind's base
        query, the order and the limit are the same for every request of a shape, and the
        key of the whole statement walks the base query's columns and joins each time (a
        seventh of a search's CPU). The values are then those of the base query and the
        limit, kept from the first statement of the shape, around the clauses' own."""
        parts = [filtered.where._generate_cache_key(), filtered.allowed._generate_cache_key()]
        if parts[0] is None or parts[1] is None:
            return None
        shape = (id(filtered.kind), parts[0].key, parts[1].key, filtered.limit)
        own = [*parts[0].bindparams, *parts[1].bindparams]
        found = self.shapes.get(shape)
        if found is None:
            found = self._compiled_shape(filtered, own)
            if found is None:
                return None
            if len(self.shapes) < MAX_SHAPES:
                self.shapes[shape] = found
        compiled, before, after = found
        values = [*before, *own, *after]
        parameters = compiled.construct_params(extracted_parameters=values)
        return compiled.string, dict(parameters or {})

    def _compiled_shape(
        self, filtered: Filtered, own: list[Any]
    ) -> tuple[Compiled, list[Any], list[Any]] | None:
        """The shape's compiled SQL, with the bound values of the whole statement before
        and after the clauses' own (`own`); None when the statement does not run as
        compiled, or when its values do not hold the clauses' as one run (then the values
        could not be told by the clauses alone, and the shape is not cached)."""
        kind = filtered.kind
        statement = self._base(kind).where(filtered.where, filtered.allowed)
        statement = statement.order_by(kind.key).limit(filtered.limit)
        key = statement._generate_cache_key()
        if key is None:
            return None
        compiled = statement.compile(dialect=DIALECT, cache_key=key)
        if not runs_as_compiled(compiled):
            return None
        values = list(key.bindparams)
        starts = [
            start
            for start in range(len(values) - len(own) + 1)
            if all(a is b for a, b in zip(values[start : start + len(own)], own, strict=True))
        ]
        if len(starts) != 1:
            return None
        start = starts[0]
        return compiled, values[:start], values[start + len(own) :]

    async def search(
        self,
        kinds: Sequence[Resource],
        request: SearchRequest,
        patient: int | None,
        max_page_bytes: int | None,
        codec: CursorCodec,
    ) -> SearchResult | None:
        """The generic search's result of a plain first page of one patient's matches (its
        next link made as the generic search makes it); None for the generic search to
        answer. ReadFailed when the database cannot be asked."""
        if not is_plain(request) or not one_patient(request, patient):
            return None
        found = self.statement(kinds, request, patient)
        compiled = self.sql(found) if found is not None else None
        if found is None or compiled is None:
            return None
        kind = found.kind
        rows = await self.reader.fetch_all(*compiled)
        total = rows[0][TOTAL_COLUMN] if rows else 0
        page = rows[: request.count]
        resources = render(kind, page)
        if not fits(resources, max_page_bytes):
            return None  # the generic fit_page shortens the page: its cursor differs
        result = SearchResult(total=None if request.total == "none" else total)
        result.matches = resources
        if total > len(page):
            result.next_cursor = next_cursor(kinds, kind, request, page[-1], codec)
        return result


def next_cursor(
    kinds: Sequence[Resource],
    kind: Resource,
    request: SearchRequest,
    last: RowMapping,
    codec: CursorCodec,
) -> str:
    """The cursor of the page after `last`, as run_search's `_boundary` writes it for an
    unsorted search: no sort values, the kind's index among the type's kinds, the key."""
    made_for = f"{kinds[0].fhir_type}:{signature(request)}"
    boundary = Cursor((), list(kinds).index(kind), last[kind.key.name], False, made_for)
    return codec.encode(boundary)


def render(kind: Resource, rows: list[RowMapping]) -> list[dict[str, Any]]:
    """The matches as the generic search's `load_rows` renders them (`read_many`)."""
    return kind.render(rows, kind.load_related(NO_CONNECTION, rows)) if rows else []


def fits(resources: list[dict[str, Any]], budget: int | None) -> bool:
    """Whether the generic `fit_page` keeps every match of the page (CODOC_MAX_PAGE_BYTES)."""
    if budget is None:
        return True
    return sum(encoded_size(resource) for resource in resources) <= budget - ENVELOPE_BYTES
