"""Running a search: one SQL statement for the page, one for the total, a few for the rows.

A FHIR type served by several tables (Encounter: stays and movements) is searched as a
UNION ALL of one branch per kind, each selecting (sort values..., kind index, key). The
order is the requested sort, then kind index, then key: a total order, so a keyset cursor
on (sort values, kind index, key) pages through every match exactly once, in the database,
whatever is inserted meanwhile. Nullable sort columns are sorted through COALESCE with a
low sentinel so that NULLs sort first ascending, the same on both backends.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import orjson
from sqlalchemy import (
    Boolean,
    Connection,
    Date,
    DateTime,
    Float,
    Integer,
    Numeric,
    and_,
    func,
    literal,
    or_,
    select,
    union_all,
)
from sqlalchemy.engine import RowMapping

from codoc_fhir.fhir.errors import NotSupported
from codoc_fhir.search import cursor as cursors
from codoc_fhir.search.clauses import kind_where, restriction
from codoc_fhir.search.includes import included_resources
from codoc_fhir.search.kept_tokens import KeptCodes
from codoc_fhir.search.kind import SearchKind
from codoc_fhir.search.model import SearchRequest, SortRule, params_of


@dataclass
class SearchScope:
    """Where a search looks: the kinds of one FHIR type (all of them, or one sub-path kind),
    the patient a patient-scoped caller is limited to, a Patient compartment, and which
    rows of another kind the caller may receive as included resources (`visible(kind)`:
    a SQL condition, None for none of them; the API layer's Visibility.rows)."""

    kinds: Sequence[SearchKind]
    all_kinds: Sequence[SearchKind]  # every kind of the type: the kind index is its position
    patient: int | None = None
    compartment: int | None = None
    visible: Callable[[Any], Any | None] | None = None  # called with one of `all_kinds`


@dataclass
class SearchResult:
    total: int | None
    matches: list[dict[str, Any]] = field(default_factory=list)
    included: list[dict[str, Any]] = field(default_factory=list)
    next_cursor: str | None = None
    previous_cursor: str | None = None


def _sentinel(column: Any) -> Any:
    kind = column.type
    if isinstance(kind, DateTime):
        return datetime(1, 1, 1, tzinfo=UTC)
    if isinstance(kind, Date):
        return date(1, 1, 1)
    if isinstance(kind, Boolean):
        return False
    if isinstance(kind, Integer):
        return -(2**62)
    if isinstance(kind, Float | Numeric):
        return -1e300
    return ""


def sort_expression(kind: SearchKind, rule: SortRule) -> Any:
    param = params_of(kind).get(rule.name)
    column = None
    if param is not None:
        column = param.columns[0] if param.columns else param.options.get("column")
    if column is None:
        raise NotSupported(f"Sorting on {rule.name!r} is not supported", expression=["_sort"])
    if getattr(column, "nullable", True) and not getattr(column, "primary_key", False):
        return func.coalesce(column, literal(_sentinel(column), column.type))
    return column


def signature(request: SearchRequest) -> str:
    return ",".join(("-" if rule.descending else "") + rule.name for rule in request.sort)


def match_branches(conn: Connection, scope: SearchScope, request: SearchRequest) -> list[Any]:
    branches = []
    kept = KeptCodes(conn)
    for kind in scope.kinds:
        where = kind_where(kind, request.filters, scope.patient, kept)
        allowed = restriction(kind, scope.patient, scope.compartment)
        if where is None or allowed is None:
            continue
        index = list(scope.all_kinds).index(kind)
        columns = [
            sort_expression(kind, rule).label(f"s{position}")
            for position, rule in enumerate(request.sort)
        ]
        columns += [literal(index, Integer).label("k"), kind.key.label("p")]
        branches.append(select(*columns).where(where, allowed))
    return branches


def _after(sub: Any, request: SearchRequest, cursor: cursors.Cursor) -> Any:
    """Rows after the cursor in the direction of travel (an OR chain: mixed directions)."""
    columns = [sub.c[f"s{position}"] for position in range(len(request.sort))]
    columns += [sub.c.k, sub.c.p]
    values = [*cursor.values, cursor.kind_index, cursor.key]
    descending = [rule.descending for rule in request.sort] + [False, False]
    chain = []
    for position, column in enumerate(columns):
        down = descending[position] != cursor.backwards
        step = column < values[position] if down else column > values[position]
        equal = [columns[before] == values[before] for before in range(position)]
        chain.append(and_(*equal, step))
    return or_(*chain)


def _order(sub: Any, request: SearchRequest, backwards: bool) -> list[Any]:
    order = []
    for position, rule in enumerate(request.sort):
        column = sub.c[f"s{position}"]
        order.append(column.desc() if rule.descending != backwards else column.asc())
    for column in (sub.c.k, sub.c.p):
        order.append(column.desc() if backwards else column.asc())
    return order


def _boundary(
    row: RowMapping, request: SearchRequest, backwards: bool, codec: Any, made_for: str
) -> str:
    values = tuple(row[f"s{position}"] for position in range(len(request.sort)))
    return codec.encode(cursors.Cursor(values, row["k"], row["p"], backwards, made_for))


Matched = tuple[SearchKind, RowMapping, dict[str, Any]]

# typed loosely: mypy 2.4 crashes expanding union_all's variadic generic signature
union_all_any: Any = union_all


def run_search(conn: Connection, scope: SearchScope, request: SearchRequest, registry: Any) -> Any:
    """The page of matches (and includes) of `request`, with its total and cursors."""
    codec = registry.cursors
    made_for = f"{scope.all_kinds[0].fhir_type}:{signature(request)}"
    cursor = codec.decode(request.cursor, made_for) if request.cursor else None
    branches = match_branches(conn, scope, request)
    if not branches:
        return SearchResult(total=None if request.total == "none" else 0)
    sub = (branches[0] if len(branches) == 1 else union_all_any(*branches)).subquery("matches")
    total = None
    if request.total != "none" or request.summary_count:
        total = conn.execute(select(func.count()).select_from(sub)).scalar_one()
    result = SearchResult(total=total)
    if request.summary_count or request.count == 0:
        return result
    backwards = bool(cursor and cursor.backwards)
    query = select(sub).order_by(*_order(sub, request, backwards)).limit(request.count + 1)
    if cursor is not None:
        query = query.where(_after(sub, request, cursor))
    rows = list(conn.execute(query).mappings())
    more = len(rows) > request.count
    page = rows[: request.count]  # in the direction of travel: nearest the cursor first
    matched = load_rows(conn, scope.all_kinds, [(row["k"], row["p"]) for row in page])
    budget = registry.max_page_bytes
    matched, result.included = fit_page(conn, registry, scope, request, matched, budget)
    if matched:
        last = matched[-1]
        kept = page_position(page, scope.all_kinds.index(last[0]), last[1][last[0].key.name])
        more = more or kept < len(page)
        page = page[:kept]
    if backwards:
        page.reverse()
        matched.reverse()
    if page:
        if more or backwards:
            result.next_cursor = _boundary(page[-1], request, False, codec, made_for)
        if (cursor is not None and not backwards) or (backwards and more):
            result.previous_cursor = _boundary(page[0], request, True, codec, made_for)
    result.matches = [resource for _, _, resource in matched]
    return result


# Room left in a page's budget for the Bundle itself: total, links (which repeat the query
# string, at most 16 KiB each), and the fullUrl and search mode of each entry.
ENVELOPE_BYTES = 64 * 1024
ENTRY_BYTES = 200


def encoded_size(resource: dict[str, Any]) -> int:
    return len(orjson.dumps(resource, default=str)) + ENTRY_BYTES


def fit_page(
    conn: Connection,
    registry: Any,
    scope: SearchScope,
    request: SearchRequest,
    matched: list[Matched],
    budget: int | None,
) -> tuple[list[Matched], list[dict[str, Any]]]:
    """The leading matches (and their includes) whose encoded size stays within `budget`
    bytes (CODOC_MAX_PAGE_BYTES): a page that would exceed it ends early, and the next
    link continues from its last match. At least one match is always kept, or paging
    could never move on.
    """
    room = None if budget is None else budget - ENVELOPE_BYTES
    count = len(matched)
    if room is not None:
        used = 0
        for position, (_, _, resource) in enumerate(matched):
            used += encoded_size(resource)
            if used > room:
                count = max(position, 1)
                break
    while True:
        included = included_resources(conn, registry, scope, request, matched[:count])
        if room is None or count <= 1:
            break
        size = sum(encoded_size(resource) for _, _, resource in [*matched[:count]])
        size += sum(encoded_size(resource) for resource in included)
        if size <= room:
            break
        count //= 2  # the includes did not fit: halve the matches and ask again
    return matched[:count], included


def page_position(page: Sequence[RowMapping], kind_index: int, key: int) -> int:
    """How many rows of `page` lead up to (and include) the row (kind_index, key)."""
    for position, row in enumerate(page):
        if (row["k"], row["p"]) == (kind_index, key):
            return position + 1
    return len(page)


def load_rows(
    conn: Connection, kinds: Sequence[SearchKind], items: Sequence[tuple[int, int]]
) -> list[tuple[SearchKind, RowMapping, dict[str, Any]]]:
    """(kind, row, resource) for (kind index, key) pairs, in order; one query per kind."""
    by_kind: dict[int, list[int]] = {}
    for index, key in items:
        by_kind.setdefault(index, []).append(key)
    found: dict[tuple[int, int], tuple[SearchKind, RowMapping, dict[str, Any]]] = {}
    for index, keys in by_kind.items():
        kind = kinds[index]
        rows = list(conn.execute(kind.base_query().where(kind.key.in_(keys))).mappings())
        for row, resource in zip(rows, kind.read_many(conn, rows), strict=True):
            found[(index, row[kind.key.name])] = (kind, row, resource)
    return [found[item] for item in items if item in found]
