"""read, create, update, patch and delete: the instance interactions, and their
conditional variants (an `Address` without a key and a search condition).

Each takes a Database (its own transaction, or a `Joined` one), a Caller and the
`Address` of the kinds named (resources/registry.py: the REST routes build it from their
path, Bundle entries from their url), and returns the resource (and, for the writes that
may create, the HTTP status). The authorization sequence is the Caller's: `allow` for the
interaction on the type, then the row checked against the caller's patient before and
after a write (a write may not move a resource to another patient).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from codoc_fhir.interactions.caller import Caller
from codoc_fhir.interactions.conditional import (
    condition_pairs,
    conditional_delete,
    conditional_patch,
    conditional_update,
    create_unless_exists,
)
from codoc_fhir.interactions.database import Database
from codoc_fhir.resources.registry import Address

Condition = list[tuple[str, str]]


def read(db: Database, caller: Caller, address: Address) -> dict[str, Any]:
    """The current state of the resource addressed; 404 for another patient's."""
    caller = caller.allow(address.fhir_type.name, "read")

    def work(conn: Connection) -> dict[str, Any]:
        kind, num = address.resolve(conn)
        caller.check(conn, kind, num)
        return kind.read(conn, num)

    return db.run_read(work)


def create(
    db: Database,
    caller: Caller,
    address: Address,
    body: Any,
    *,
    if_none_exist: str | None = None,
) -> tuple[dict[str, Any], int]:
    """(resource, 201), or (the one match, 200) when `if_none_exist` finds one."""
    caller = caller.allow(address.fhir_type.name, "create")
    kind = address.kind_for_create(body)
    condition = condition_pairs(if_none_exist)

    def work(conn: Connection) -> tuple[dict[str, Any], int]:
        resource, status = create_unless_exists(
            conn,
            address.kinds,
            kind,
            body,
            condition,
            known_types=list(db.registry.types),
            patient=caller.patient_num,
        )
        if status == 201:
            caller.check_created(conn, kind, resource)
        return resource, status

    return db.run_write_trusting_keys(work)


def update(
    db: Database,
    caller: Caller,
    address: Address,
    body: Any,
    *,
    if_match: str | None = None,
    condition: Condition | None = None,
) -> tuple[dict[str, Any], int]:
    """(resource, 200); without a key, the conditional update (201 when it creates)."""
    caller = caller.allow(address.fhir_type.name, "update")

    def work(conn: Connection) -> tuple[dict[str, Any], int]:
        if address.key is None:
            return conditional_update(
                conn,
                caller,
                address.kinds,
                address.kind_for_create,
                body,
                condition or [],
                known_types=list(db.registry.types),
                if_match=if_match,
            )
        kind, num = address.resolve(conn)
        caller.check_owner(conn, kind, num, write=True)
        resource = kind.update(conn, num, body, if_match)
        caller.check_owner(conn, kind, num, write=True, created=True)
        return resource, 200

    return db.run_write(work)


def patch(
    db: Database,
    caller: Caller,
    address: Address,
    changes: Any,
    *,
    if_match: str | None = None,
    json_patch: bool = False,
    condition: Condition | None = None,
) -> dict[str, Any]:
    """The patched resource (a JSON Patch, or the fields to merge); without a key, the one
    resource the condition names."""
    caller = caller.allow(address.fhir_type.name, "patch")

    def work(conn: Connection) -> dict[str, Any]:
        if address.key is None:
            return conditional_patch(
                conn,
                caller,
                address.kinds,
                changes,
                condition or [],
                known_types=list(db.registry.types),
                if_match=if_match,
                json_patch=json_patch,
            )
        kind, num = address.resolve(conn)
        caller.check_owner(conn, kind, num, write=True)
        resource = kind.patch(conn, num, changes, if_match, json_patch=json_patch)
        caller.check_owner(conn, kind, num, write=True, created=True)
        return resource

    return db.run_write(work)


def delete(
    db: Database,
    caller: Caller,
    address: Address,
    *,
    if_match: str | None = None,
    condition: Condition | None = None,
) -> None:
    """Delete the resource addressed; without a key, the one the condition names (none:
    nothing deleted, still a success)."""
    caller = caller.allow(address.fhir_type.name, "delete")

    def work(conn: Connection) -> None:
        if address.key is None:
            conditional_delete(
                conn,
                caller,
                address.kinds,
                condition or [],
                known_types=list(db.registry.types),
                if_match=if_match,
            )
            return
        kind, num = address.resolve(conn)
        caller.check_owner(conn, kind, num, write=True)
        kind.delete(conn, num, if_match)

    db.run_write(work)
