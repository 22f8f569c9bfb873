"""search: a type's search (its Codoc sub-path's, a patient's compartment's), answered as
a searchset Bundle.

The caller's scopes must grant `search` on the type; a grant from `patient/` scopes
confines matches (and compartments) to the token's patient, and every included resource
(`_include`, `_revinclude`) passes the caller's `rows` of its own type, so an include
never shows what a read of that resource would refuse. The query is parsed before a
connection is opened: a search refused for its cost (or any other 400) never reaches the
database.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection

from codoc_fhir.interactions.caller import Caller
from codoc_fhir.interactions.database import Database
from codoc_fhir.resources.base import Resource
from codoc_fhir.resources.registry import Address
from codoc_fhir.search.bundle import searchset
from codoc_fhir.search.execute import SearchScope, run_search
from codoc_fhir.search.includes import check_include
from codoc_fhir.search.model import SearchRequest, parse_search


def search(
    db: Database,
    caller: Caller,
    address: Address,
    pairs: list[tuple[str, str]],
    *,
    self_url: str,
    lenient: bool = False,
    compartment: int | None = None,
) -> dict[str, Any]:
    """The searchset Bundle of the search `pairs` on the kinds addressed."""
    caller = caller.allow(address.fhir_type.name, "search")
    registry = db.registry
    request = parse_for(registry, address.kinds, pairs, lenient)
    scope = search_scope(registry, address.kinds, caller.patient_num, compartment, caller.rows)

    def work(conn: Connection) -> dict[str, Any]:
        found = run_search(conn, scope, request, registry)
        return searchset(request, found, self_url, caller.base_url)

    return db.run_read(work)


def parse_for(
    registry: Any, kinds: Sequence[Resource], pairs: list[tuple[str, str]], lenient: bool
) -> SearchRequest:
    """The parsed search, held to the registry's cost limits (CODOC_MAX_SEARCH_VALUES)."""
    return parse_search(
        pairs,
        kinds,
        lenient=lenient,
        known_types=registry.types.keys(),
        include_ok=lambda spec: check_include(registry, spec),
        max_values=registry.max_search_values,
        kinds_of=lambda name: registry.types[name].kinds,
    )


def search_scope(
    registry: Any,
    kinds: Sequence[Resource],
    patient: int | None,
    compartment: int | None,
    visible: Callable[[Resource], Any | None] | None = None,
) -> SearchScope:
    all_kinds = registry.types[kinds[0].fhir_type].kinds
    return SearchScope(kinds, all_kinds, patient, compartment, visible)
