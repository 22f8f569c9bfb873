"""The fast search: `GET /v4.3.0/{Type}?subject=...&date=...` answered on the event loop.

Asked by api/front.py after the fast read, once every check has run (auth, rate limit, the
access log). A type search whose matches one statement finds (resources/fast_search.py) is
answered without FastAPI's routing, the thread-pool hand-off and synchronous SQLAlchemy,
and answers what the generic search route (api/search_routes.py) answers:

- the same paths: the type's standard and Codoc segments, trailing slash optional;
- the same parsing (`parse_for`, with `Prefer: handling=lenient`) and the same clauses;
- the same authorization: `search` granted on the type, and a grant from `patient/` scopes
  confines the matches to that patient (the Caller's `allow`);
- the same Bundle (`searchset`: total, self link, fullUrls on the public base), body
  encoding and content type.

Everything else goes to the generic route unchanged: POST `_search`, compartments, result
parameters other than `_count` and `_total` (`_pretty` and `_format` included), a refused
scope, a query that does not parse (its 400 is the generic one), and whatever the searcher
declines (several kinds, another parameter type, more than one page, a database away).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import orjson

from codoc_fhir import FHIR_VERSION
from codoc_fhir.api.dispatch import route_path
from codoc_fhir.api.fast_read import caller_access, content_type
from codoc_fhir.interactions.search import parse_for
from codoc_fhir.resources.fast_read import answers_in_one_row
from codoc_fhir.resources.fast_search import FastSearcher
from codoc_fhir.resources.registry import FhirType, Registry
from codoc_fhir.search.bundle import searchset
from codoc_fhir.search.model import is_lenient

Scope = dict[str, Any]
SEARCH = "search"
RESULT_KEYS = frozenset({"_count", "_total"})  # the only result parameters answered here


def search_types(registry: Registry) -> dict[str, FhirType]:
    """The path segments (`Procedure`, `procedure`) of the types with a kind answered in
    one row: the type search routes of api/search_routes.py, on all the type's kinds."""
    sub_paths = {kind.codoc_path for kind in registry.sub_paths()}  # routed before the types
    segments: dict[str, FhirType] = {}
    for fhir_type in registry:
        if any(answers_in_one_row(kind) for kind in fhir_type.kinds):
            for segment in (fhir_type.name, fhir_type.codoc_path):
                if segment not in sub_paths:
                    segments[segment] = fhir_type
    return segments


def query_pairs(query: bytes) -> list[tuple[str, str]] | None:
    """The query's pairs as the route reads them (Starlette's QueryParams), or None when
    a result parameter other than `_count`/`_total` is asked."""
    pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
    if any(key.startswith("_") and key not in RESULT_KEYS for key, _ in pairs):
        return None
    return pairs


class FastSearch:
    """Answers the plain type searches it can (api/front.py asks it, after every check)."""

    def __init__(self, searcher: FastSearcher, registry: Registry, prefix: str) -> None:
        self.searcher = searcher
        self.registry = registry
        self.prefix = prefix
        self.segments = search_types(registry)

    def _target(self, scope: Scope) -> FhirType | None:
        path = route_path(scope)
        if not path.startswith(self.prefix):
            return None
        segment = path[len(self.prefix) :]
        return self.segments.get(segment[:-1] if segment.endswith("/") else segment)

    async def answered(
        self, scope: Scope, send: Any, accept: bytes, extra: list[tuple[bytes, bytes]] | None
    ) -> bool:
        """Whether the request was answered here (`extra`: headers to add to the answer)."""
        query = scope.get("query_string")
        if scope["method"] != "GET" or not query:
            return False
        fhir_type = self._target(scope)
        pairs = query_pairs(query) if fhir_type is not None else None
        if fhir_type is None or pairs is None:
            return False
        state = scope["state"]
        allowed, patient = caller_access(state, fhir_type.name, SEARCH)
        if not allowed:
            return False
        bundle = await self._bundle(scope, fhir_type, pairs, patient)
        if bundle is None:
            return False
        await _send_bundle(send, bundle, accept, extra)
        self.searcher.served += 1
        return True

    async def _bundle(
        self, scope: Scope, fhir_type: FhirType, pairs: list[tuple[str, str]], patient: int | None
    ) -> dict[str, Any] | None:
        """The searchset the generic route would answer, or None to leave it to it."""
        prefer = scope["codoc_fhir.headers"][1].get(b"prefer")
        lenient = is_lenient(prefer.decode("latin-1") if prefer else None)
        kinds = fhir_type.kinds
        try:
            request = parse_for(self.registry, kinds, pairs, lenient)
            result = await self.searcher.search(
                kinds, request, patient, self.registry.max_page_bytes, self.registry.cursors
            )
        except Exception:  # a 400 (FhirError), the database away (ReadFailed), a row that
            return None  # does not render: the generic route answers, words or logs it
        if result is None:
            return None
        origin = scope["state"]["public_origin"]
        return searchset(request, result, origin + scope["path"], f"{origin}/v{FHIR_VERSION}")


async def _send_bundle(
    send: Any, bundle: dict[str, Any], accept: bytes, extra: list[tuple[bytes, bytes]] | None
) -> None:
    """The Bundle as `fhir_response` sends it: its length and content type."""
    body = orjson.dumps(bundle)
    headers = [
        (b"content-length", str(len(body)).encode("latin-1")),
        (b"content-type", content_type(accept)),
    ]
    if extra:
        headers.extend(extra)
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
