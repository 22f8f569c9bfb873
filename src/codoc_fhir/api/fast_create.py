"""The fast create: a plain `POST /v4.3.0/{Type}` answered without FastAPI's routing.

The step of api/front.py after the fast read and search: every check (forwarded headers,
CORS, access log, Host check, auth, rate limit, 401, 406) has run. A plain create is the
same interaction the generic route calls (`interactions.crud.create`, in the thread pool:
it is synchronous SQL), minus the route table, the dependency and the Request object,
which cost a create about a fifth of its CPU (docs/PERFORMANCE.md, create).

It answers exactly what the generic route answers to a 201: the stored resource, Location,
ETag, Last-Modified and content type. Everything else goes to the generic route unchanged:
a query string or If-None-Exist (conditional create), a Prefer header, another media type
(415), a path the route table does not serve this way, a scope that refuses the create
(403). A create the interaction refuses (400, 404, 409, 412, 422...) is answered here too,
as the generic route's error handler answers it (the caller's view of the error, as an
OperationOutcome in the negotiated media type): handing it on would run the refused create
twice more, and a refusal is the costliest create there is (interactions/database.py runs it
with and without the trusted keys).
"""

from __future__ import annotations

from typing import Any

from anyio import to_thread

from codoc_fhir import FHIR_VERSION
from codoc_fhir.api.auth import send_error
from codoc_fhir.api.dispatch import route_path
from codoc_fhir.api.fast_read import caller_access, content_type, send_resource
from codoc_fhir.fhir.errors import FhirError, NotFound
from codoc_fhir.fhir.validation import parse_json_body
from codoc_fhir.interactions import crud
from codoc_fhir.interactions.caller import Caller
from codoc_fhir.interactions.database import Database
from codoc_fhir.resources.fast_create import FastCreator
from codoc_fhir.resources.registry import Address

Scope = dict[str, Any]
JSON_MEDIA = (b"application/json", b"application/fhir+json")
HANDED_ON_HEADERS = (b"if-none-exist", b"prefer")
CREATE = "create"


class FastCreate:
    """Answers the plain creates it can (api/front.py asks it, after every check)."""

    def __init__(self, db: Database, prefix: str, creator: FastCreator | None = None) -> None:
        self.db = db
        self.prefix = prefix
        self.creator = creator  # PostgreSQL: the creates written in one statement
        self.addresses: dict[str, Address | None] = {}  # path rest -> what it creates
        self.served = 0  # creates answered here
        self.refused = 0  # refusals answered here

    def target(self, scope: Scope, named: dict[bytes, bytes]) -> Address | None:
        """What the request creates when it is a plain create of a served path, else None."""
        if scope["method"] != "POST" or scope.get("query_string"):
            return None
        if any(name in named for name in HANDED_ON_HEADERS):
            return None
        media = named.get(b"content-type", b"").split(b";")[0].strip().lower()
        if media not in JSON_MEDIA:
            return None
        path = route_path(scope)
        if not path.startswith(self.prefix):
            return None
        return self._address(path[len(self.prefix) :])

    def _address(self, rest: str) -> Address | None:
        """The Address of a type's path (`Procedure`, `procedure/`, `encounter/movement`),
        resolved once per path; None for anything else (ids, operations, the base)."""
        if rest in self.addresses:
            return self.addresses[rest]
        address: Address | None = None
        bare = rest[:-1] if rest.endswith("/") else rest
        if bare and "//" not in rest and not bare.startswith(("_", "$")):
            try:
                address = self.db.registry.address(bare)
            except NotFound:
                address = None
            if address is not None and address.key is not None:
                address = None
        if len(self.addresses) < 1024:  # bounded: clients choose the paths
            self.addresses[rest] = address
        return address

    async def answered(
        self,
        scope: Scope,
        address: Address,
        body: bytes,
        send: Any,
        accept: bytes,
        extra: list[tuple[bytes, bytes]] | None,
    ) -> bool:
        """Whether the create of `body` was answered here (else the generic route is to
        answer it, from the same body)."""
        state = scope["state"]
        allowed, patient = caller_access(state, address.fhir_type.name, CREATE)
        if not allowed:
            return False
        base = f"{state['public_origin']}/v{FHIR_VERSION}"
        caller = Caller(state.get("principal"), base, patient)
        try:
            parsed = parse_json_body(body)
            resource, status = await self._create(address, parsed, caller)
        except FhirError as error:
            await send_error(send, caller.withheld(error), media=content_type(accept), extra=extra)
            self.refused += 1
            return True
        location = f"{base}/{resource['resourceType']}/{resource['id']}"
        await send_resource(
            send,
            resource,
            accept,
            extra,
            status=status,
            location=location if status == 201 else None,
        )
        self.served += 1
        return True

    async def _create(
        self, address: Address, body: Any, caller: Caller
    ) -> tuple[dict[str, Any], int]:
        """In one statement on the event loop where resources/fast_create.py can write it
        (a caller of every patient: a patient-scoped one has its created row checked),
        else the interaction in the thread pool."""
        if self.creator is not None and caller.patient_num is None:
            created = await self.creator.create(address.kind_for_create(body), body)
            if created is not None:
                return created, 201
        return await to_thread.run_sync(crud.create, self.db, caller, address, body)
