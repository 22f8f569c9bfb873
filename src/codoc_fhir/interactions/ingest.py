"""The writes of a bulk import: one create, the update of a resource an earlier run
imported, and a group of creates of one kind written together (`Resource.create_many`).

They are the create and update interactions without what an import does not need: the
resource is not read back (the importer keeps ids, not bodies), and there is no
conditional or version check (the importer decided create or update from its id map).
The caller's checks still run, so the importer holds to the same scope rules as REST; it
runs as `Caller.system()` in a `Joined` database, the transaction of its batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection

from codoc_fhir.interactions.caller import Caller
from codoc_fhir.interactions.database import Database
from codoc_fhir.resources.base import Resource
from codoc_fhir.resources.registry import FhirType


def create_id(db: Database, caller: Caller, fhir_type: FhirType, body: Any) -> str:
    """Create `body`; the new resource's id."""
    caller = caller.allow(fhir_type.name, "create")
    kind = fhir_type.kind_for_create(body)

    def work(conn: Connection) -> str:
        created = kind.create(conn, body, read_back=False)
        caller.check_created(conn, kind, created)
        return str(created["id"])

    return db.run_write(work)


def update_id(db: Database, caller: Caller, fhir_type: FhirType, ident: str, body: Any) -> str:
    """Write `body` over the resource `ident` as its next version; `ident`."""
    caller = caller.allow(fhir_type.name, "update")
    kind, num = fhir_type.resolve_id(ident)

    def work(conn: Connection) -> str:
        caller.check_owner(conn, kind, num, write=True)
        kind.update(conn, num, body)
        caller.check_owner(conn, kind, num, write=True, created=True)
        return ident

    return db.run_write(work)


def create_resources(
    db: Database, caller: Caller, kind: Resource, bodies: Sequence[Any]
) -> list[dict[str, Any]]:
    """Create every body of one kind together; the stored resources, in order, as one
    `create` per body answers them (a transaction Bundle answers each entry's version,
    ETag and location). The first refusal raises with the group half written: run it in a
    savepoint (the importer and Bundles do, then replay the group one create at a time to
    learn which body failed)."""
    caller = caller.allow(kind.fhir_type, "create")

    def work(conn: Connection) -> list[dict[str, Any]]:
        resources = kind.create_many(conn, bodies)
        if caller.patient_num is not None:
            for resource in resources:
                caller.check_created(conn, kind, resource)
        return resources

    return db.run_write(work)


def create_ids(db: Database, caller: Caller, kind: Resource, bodies: Sequence[Any]) -> list[str]:
    """`create_resources`, keeping only the ids (what the importer's id map holds)."""
    return [str(resource["id"]) for resource in create_resources(db, caller, kind, bodies)]
