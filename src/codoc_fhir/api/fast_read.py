"""The fast read: `GET /v4.3.0/{Type}/{id}` answered on the event loop (PostgreSQL).

The innermost step of api/front.py: every check (forwarded headers, CORS, access log, Host
check, auth, rate limit, 401, 406) has run when a request gets here. A read by id of a
kind answered in one row (resources/fast_read.py) is answered without FastAPI's routing,
dependencies or thread-pool hand-off. It answers exactly what the generic route answers:

- the same paths: the standard one (`/Procedure/12`) and the Codoc one (`/procedure/12/`),
  trailing slash optional, ids resolved by the type as the routes resolve them;
- the same authorization: the token's scopes must grant `read` on the type, and a grant
  from `patient/` scopes only shows that patient's rows (api/visibility.py);
- the same body (the kind's `render`), headers (ETag, Last-Modified) and content type.

Whatever is not a plain 200 of that kind is handed to the generic route unchanged: a query
string (`_elements`, `_summary`, `_pretty`...), a refused scope (403), another patient's
row or a missing one (404, 410 once deleted), a database that cannot be reached (503).
Those answers come from the one place that makes them, so they cannot drift apart.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from codoc_fhir.api.auth import Forbidden, Principal
from codoc_fhir.api.dispatch import route_path
from codoc_fhir.fhir.errors import NotFound
from codoc_fhir.fhir.responses import media_type_for
from codoc_fhir.resources.base import Resource
from codoc_fhir.resources.fast_read import FastReader, ReadFailed, answers_in_one_row
from codoc_fhir.resources.registry import FhirType, Registry

Scope = dict[str, Any]
READ = "read"


def fast_types(registry: Registry) -> dict[str, FhirType]:
    """The path segments (`Procedure`, `procedure`) of the types with a kind answered in one
    row. A Codoc segment only when the type resolves Codoc keys as FHIR ids (no kind of
    it has a `resolve_codoc_key` of its own, as CodeSystem has)."""
    segments: dict[str, FhirType] = {}
    for fhir_type in registry:
        if not any(answers_in_one_row(kind) for kind in fhir_type.kinds):
            continue
        segments[fhir_type.name] = fhir_type
        plain_keys = not any(hasattr(kind, "resolve_codoc_key") for kind in fhir_type.kinds)
        if plain_keys:  # sub-paths (`observation/phenotype/3`) never take a bare key here
            segments[fhir_type.codoc_path] = fhir_type
    return segments


def read_target(
    path: str, prefix: str, segments: dict[str, FhirType]
) -> tuple[Resource, int] | None:
    """The kind and key a read path names when the fast read can answer it, else None."""
    if not path.startswith(prefix):
        return None
    rest = path[len(prefix) :]
    rest = rest[:-1] if rest.endswith("/") else rest
    segment, _, ident = rest.partition("/")
    fhir_type = segments.get(segment)
    if fhir_type is None or not ident or "/" in ident:
        return None
    try:
        kind, num = fhir_type.resolve_id(ident)
    except NotFound:
        return None
    return (kind, num) if answers_in_one_row(kind) else None


def caller_access(
    state: dict[str, Any], fhir_type: str, interaction: str
) -> tuple[bool, int | None]:
    """Whether the caller may `interaction` (read, search) on `fhir_type` (no: the generic
    route answers the 403), and the patient it is then confined to (None: every patient).
    Without a principal, the request state's `patient_restriction` confines it, as the
    Caller of the route."""
    principal: Principal | None = state.get("principal")
    if principal is None:
        return True, state.get("patient_restriction")
    try:
        return True, principal.access(fhir_type, interaction)
    except Forbidden:
        return False, None


class FastRead:
    """Answers the plain reads by id it can (api/front.py asks it, after every check)."""

    def __init__(self, reader: FastReader, registry: Registry, prefix: str) -> None:
        self.reader = reader
        self.prefix = prefix
        self.segments = fast_types(registry)
        for kind in registry.kinds():  # compiled now: a statement that cannot be fails here
            if answers_in_one_row(kind):
                reader.statement(kind)

    async def answered(
        self, scope: Scope, send: Any, accept: bytes, extra: list[tuple[bytes, bytes]] | None
    ) -> bool:
        """Whether the request was answered here (`extra`: headers to add to the answer)."""
        if scope["method"] != "GET" or scope.get("query_string"):
            return False
        target = read_target(route_path(scope), self.prefix, self.segments)
        if target is None:
            return False
        kind, num = target
        allowed, patient = caller_access(scope["state"], kind.fhir_type, READ)
        if not allowed:
            return False
        try:
            row = await self.reader.fetch(kind, num)
        except ReadFailed:
            return False
        if row is None or not _visible(kind, row, patient):
            return False
        try:
            resource = self.reader.render(kind, row)
        except Exception:  # the generic route answers it (and logs it) the usual way
            return False
        await send_resource(send, resource, accept, extra)
        self.reader.served += 1
        return True


def _visible(kind: Resource, row: Any, patient: int | None) -> bool:
    """Whether a caller confined to `patient` (None: to no one) may see the row, as
    Visibility.check decides: rows of a patient-less kind are everyone's."""
    column = kind.patient_column()
    return patient is None or column is None or row[column.name] == patient


DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
JSON_TYPES: dict[bytes, bytes] = {}  # Accept -> content type answered (bounded below)


def http_date(instant: str) -> bytes:
    """`meta.lastUpdated` as an HTTP date, as `resource_headers` writes it
    (email.utils.format_datetime, in a fifth of the time)."""
    when = datetime.fromisoformat(instant.replace("Z", "+00:00")).astimezone(UTC)
    return (
        f"{DAYS[when.weekday()]}, {when.day:02d} {MONTHS[when.month - 1]} {when.year:04d} "
        f"{when.hour:02d}:{when.minute:02d}:{when.second:02d} GMT"
    ).encode("ascii")


def content_type(accept: bytes) -> bytes:
    found = JSON_TYPES.get(accept)
    if found is None:
        found = media_type_for(accept.decode("latin-1")).encode("latin-1")
        if len(JSON_TYPES) < 256:
            JSON_TYPES[accept] = found
    return found


async def send_resource(
    send: Any,
    resource: dict[str, Any],
    accept: bytes,
    extra: list[tuple[bytes, bytes]] | None,
    *,
    status: int = 200,
    location: str | None = None,
) -> None:
    """The resource as `answer_resource` sends it: ETag, Last-Modified, the Location of a
    create, content type."""
    body = orjson.dumps(resource)
    meta = resource.get("meta") or {}
    headers = [(b"etag", f'W/"{meta.get("versionId", "1")}"'.encode("latin-1"))]
    if meta.get("lastUpdated"):
        headers.append((b"last-modified", http_date(meta["lastUpdated"])))
    if location is not None:
        headers.append((b"location", location.encode("latin-1")))
    headers.append((b"content-length", str(len(body)).encode("latin-1")))
    headers.append((b"content-type", content_type(accept)))
    if extra:
        headers.extend(extra)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
