"""What the search layer needs of a resource kind, and a search parameter declared as data.

The search layer sits below the resource mappings: mappings declare their parameters with
it (search/declare.py) and hand it their kinds; it never imports a mapping. `SearchKind`
says which part of a kind (resources/base.py `Resource`) it relies on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import Column, Connection, Table
from sqlalchemy.engine import RowMapping


@dataclass
class SearchParam:
    """A search parameter declared as data (see codoc_fhir.search.declare for builders).

    `columns` are the warehouse columns the parameter tests (a date's start and end, the
    columns a string searches); `build(kind, search_filter)` replaces the generic SQL of
    the parameter type (joins, subqueries); `target` lists a reference's targets.
    """

    name: str
    type: str  # token | reference | date | string | quantity | number | uri
    target: Any = None
    description: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    columns: tuple[Any, ...] = ()
    build: Callable[[Any, Any], Any] | None = None


class SearchKind(Protocol):
    """A resource kind as the search layer sees it: its table, ids and parameters, and the
    rendering of the rows a search found."""

    @property
    def fhir_type(self) -> str: ...

    @property
    def table(self) -> Table: ...

    @property
    def id_prefix(self) -> str: ...

    @property
    def search_params(self) -> dict[str, SearchParam]: ...

    @property
    def keeps_elements(self) -> bool: ...

    @property
    def key(self) -> Column: ...

    def fhir_id(self, num: int) -> str: ...

    def parse_fhir_id(self, ident: str) -> int | None: ...

    def patient_column(self) -> Column | None: ...

    def scope(self) -> Any: ...

    def base_query(self) -> Any: ...

    def read_many(self, conn: Connection, rows: Sequence[RowMapping]) -> list[dict[str, Any]]: ...
