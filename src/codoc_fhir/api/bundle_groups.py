"""Runs of plain creates of one kind in a transaction Bundle, written together.

A Synthea-style transaction is one Patient and hundreds of resources naming it: after the
Patient, the rest are POSTs of a few types with no condition. Such a run of consecutive
entries goes to the interaction layer's grouped create (`ingest.create_resources`: the
same checks and mapping as one create each, the statements grouped, as the importer
does) in a savepoint. If the group fails, the savepoint is rolled back and the caller runs
the entries one at a time, so the error names the entry that failed as it did before.

An entry joins a group only when nothing links it to the entries around it: a POST to a
bare type whose kind allows grouped creates, without `ifNoneExist`, with no reference
still to resolve (a `urn:` fullUrl not assigned yet, a conditional reference), and whose
own fullUrl no entry names (that one runs alone, so its id is assigned before the entries
naming it are rewritten: the processing order puts them after it).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DataError, IntegrityError

from codoc_fhir.api.bundle_entries import Entry, named_url
from codoc_fhir.fhir.errors import FhirError
from codoc_fhir.fhir.references import references
from codoc_fhir.interactions import ingest
from codoc_fhir.interactions.caller import Caller
from codoc_fhir.interactions.database import Joined
from codoc_fhir.resources.base import Resource
from codoc_fhir.resources.registry import Registry


def referenced_full_urls(entries: list[Entry]) -> set[str]:
    """The fullUrls some entry names, in a reference, its url or its ifNoneExist."""
    full_urls = {entry.full_url for entry in entries if entry.full_url}
    named: set[str] = set()
    for entry in entries:
        for reference in references(entry.resource):
            named.update((reference, named_url(reference, entry.full_url)))
        for text in (entry.url, entry.if_none_exist):
            if text and ":" in text:  # fullUrls are absolute: a urn or a URL
                named.update(full_url for full_url in full_urls if full_url in text)
    return full_urls & named


def groupable_kind(registry: Registry, entry: Entry, referenced: set[str]) -> Resource | None:
    """The kind `entry` creates when it may join a group of creates; None otherwise."""
    if entry.method != "POST" or entry.if_none_exist or not isinstance(entry.resource, dict):
        return None
    if entry.full_url in referenced:
        return None
    path, _, query = entry.url.partition("?")
    if query or "$" in path:
        return None
    try:
        address = registry.address(path)
        kind = address.kind_for_create(entry.resource) if address.key is None else None
    except FhirError:
        return None  # run alone, it answers its own error
    if kind is None or not kind.batch_creates or _has_pending_reference(entry.resource):
        return None
    return kind


def _has_pending_reference(resource: Any) -> bool:
    return any(
        reference.startswith("urn:") or "?" in reference for reference in references(resource)
    )


def create_group(
    conn: Connection, registry: Registry, caller: Caller, kind: Resource, entries: list[Entry]
) -> list[dict[str, Any]] | None:
    """The created resources, in order; None (nothing written) when any entry is refused:
    run them one at a time to learn which."""
    try:
        with conn.begin_nested():
            bodies = [entry.resource for entry in entries]
            return ingest.create_resources(Joined(conn, registry), caller, kind, bodies)
    except (FhirError, IntegrityError, DataError):
        return None
