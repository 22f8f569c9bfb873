"""operation: the FHIR operations that are interactions of their own ($validate).

`$validate` on a type checks a body as a create would; on an instance as an update of
that resource would (`mode=delete` in a Parameters body: whether it could be deleted). The
write really runs, in a transaction that is always rolled back (a savepoint of a Bundle's
transaction when Joined), so the checks are exactly those of the write, database
constraints included. Valid: 200 and an OperationOutcome of severity `information`;
invalid: 400 and the write's OperationOutcome. The addressed resource itself missing stays
a 404 (410 once deleted); a caller that may not write gets 401/403 as for the write.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from codoc_fhir.fhir.errors import FhirError, Invalid, NotSupported, operation_outcome
from codoc_fhir.interactions.caller import Caller
from codoc_fhir.interactions.database import Database
from codoc_fhir.resources.base import Resource
from codoc_fhir.resources.registry import Address

MODES = ("create", "update", "delete")


@dataclass(frozen=True)
class OperationCall:
    """One operation asked for: its name (`$validate`), what it is on, its input."""

    name: str
    address: Address
    body: Any = None


def operation(db: Database, caller: Caller, call: OperationCall) -> tuple[dict[str, Any], int]:
    """(answer, HTTP status) of the operation; 400 `not-supported` for one not served."""
    if call.name != "$validate":
        raise NotSupported(f"Operation {call.name} is not supported here")
    return validate(db, caller, call.address, call.body)


def validate(
    db: Database, caller: Caller, address: Address, body: Any
) -> tuple[dict[str, Any], int]:
    """The verdict of `$validate` on the type (a create) or the instance addressed."""
    caller = caller.allow(address.fhir_type.name, "create")
    if address.key is None:
        work = create_check(caller, address.kind_for_create, body)
    else:
        work = instance_check(caller, address.resolve, body)
    error: FhirError | None = None
    try:
        db.run_rolled_back(work)
    except FhirError as failure:
        error = failure
    return verdict(error)


def unwrap(body: Any) -> tuple[Any, str | None]:
    """(resource, mode) from a bare resource or a Parameters (`resource`, `mode`)."""
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        return body, None
    resource, mode = None, None
    for parameter in body.get("parameter") or []:
        if not isinstance(parameter, dict):
            continue
        if parameter.get("name") == "resource":
            resource = parameter.get("resource")
        elif parameter.get("name") == "mode":
            mode = parameter.get("valueCode") or parameter.get("valueString")
    if mode is not None and mode not in MODES:
        raise Invalid(f"$validate mode must be one of {', '.join(MODES)}", expression=["mode"])
    return resource, mode


def verdict(error: FhirError | None) -> tuple[dict[str, Any], int]:
    """The OperationOutcome and status $validate answers for a check's outcome."""
    if error is None:
        text = "The resource is valid: the write would be accepted"
        return operation_outcome("informational", text, severity="information"), 200
    if error.status in (401, 403, 404, 410):
        raise error
    return error.outcome(), 400


def create_check(
    caller: Caller, pick_kind: Callable[[Any], Resource], body: Any
) -> Callable[[Connection], None]:
    """The work of `$validate` on a type: the create, as the create interaction runs it."""
    resource, _mode = unwrap(body)

    def work(conn: Connection) -> None:
        kind = pick_kind(resource)
        caller.check_created(conn, kind, kind.create(conn, resource))

    return work


def instance_check(
    caller: Caller, resolve: Callable[[Connection], tuple[Resource, int]], body: Any
) -> Callable[[Connection], None]:
    """The work of `$validate` on an instance: its update (or, `mode=delete`, delete)."""
    resource, mode = unwrap(body)

    def work(conn: Connection) -> None:
        kind, num = resolve(conn)
        kind.fetch_row(conn, num)  # 404 / 410 for the addressed resource itself
        caller.check_owner(conn, kind, num, write=True)
        if mode == "delete":
            kind.delete(conn, num)
            return
        kind.update(conn, num, resource)
        caller.check_owner(conn, kind, num, write=True, created=True)

    return work
