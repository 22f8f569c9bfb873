"""Ids of imported resources: the source server's id -> ours (table fhir_import_id_map).

Resources from another server carry that server's ids (`Patient/8f3a...`) and, in
Bundles, `urn:uuid:` fullUrls. Each imported resource is recorded under its source key
(type, id); a Bundle entry also under its fullUrl. References of later resources are
rewritten through the map before the resource reaches the mapping, and a resource whose
source key is already mapped is not imported again (unless its content changed: it is
then updated). A reference nothing imported yet is left as sent and reported, so that the
importer can retry the resource once the run has created what it names.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import orjson
from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from codoc_fhir.fhir.dates import utc_now
from codoc_fhir.fhir.references import references
from codoc_fhir.resources.lookups import among
from codoc_fhir.warehouse.copy import array_rows, insert_many
from codoc_fhir.warehouse.schema import fhir_import_id_map as id_map

CHUNK = 500
URN_PREFIXES = ("urn:uuid:", "urn:oid:")
MAP_COLUMNS = ("source_type", "source_id", "target_id", "update_date", "content_hash")


def source_key(resource: dict[str, Any], full_url: str | None) -> tuple[str, str]:
    """(type, source id): the resource's id; else the id its fullUrl carries (the uuid of
    `urn:uuid:<uuid>`, as Synthea-style exports use it for the id, or `.../Type/id`), else
    the fullUrl; else a hash of its content (a re-run does not create it twice)."""
    kind = str(resource.get("resourceType"))
    ident = resource.get("id")
    if ident:
        return kind, str(ident)
    if full_url and full_url.startswith("urn:uuid:"):
        return kind, full_url.removeprefix("urn:uuid:")
    if full_url:
        pair = split_reference(full_url, [kind])
        return kind, pair[1] if pair else full_url[:300]
    digest = hashlib.sha256(orjson.dumps(resource, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return kind, f"sha256:{digest}"


def split_reference(text: str, served: Iterable[str]) -> tuple[str, str] | None:
    """(type, id) a reference names when its type is served here: `Patient/abc`,
    `http://other/fhir/Patient/abc`, `.../Patient/abc/_history/2`; None otherwise."""
    parts = text.split("/")
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    if len(parts) >= 2 and parts[-2] in served and parts[-1]:
        return parts[-2], parts[-1]
    return None


def content_hash(body: dict[str, Any]) -> str:
    """A hash of a resource as it is written (references already ours): the same resource
    read again, from the same file or another export of it, has the same."""
    return hashed(body)[0]


def hashed(body: dict[str, Any]) -> tuple[str, bool]:
    """`content_hash`, and whether a `?` is anywhere in the resource's JSON: without one it
    holds no conditional reference (`Practitioner?identifier=...`), and the batch skips
    the walk that looks for them (2 % of an import's time)."""
    written = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(written, digest_size=16).hexdigest(), b"?" in written


@dataclass
class IdMap:
    """The source -> target ids a batch needs, loaded in a few queries, plus the ones the
    batch assigns (written with the batch, in its transaction)."""

    served: list[str]
    known: dict[tuple[str, str], str] = field(default_factory=dict)  # -> "Type/target"
    urns: dict[str, str] = field(default_factory=dict)  # urn / fullUrl -> "Type/target"
    hashes: dict[tuple[str, str], str | None] = field(default_factory=dict)
    pending: list[dict[str, Any]] = field(default_factory=list)
    rehashed: dict[tuple[str, str], str] = field(default_factory=dict)  # (type, target) -> hash

    def prefetch(self, conn: Connection, records: Iterable[tuple[Any, str | None]]) -> None:
        """Load the map rows the records' own keys, fullUrls and references name."""
        keys: dict[str, set[str]] = {}
        urns: set[str] = set()
        for resource, full_url in records:
            if not isinstance(resource, dict):
                continue
            kind, ident = source_key(resource, full_url)
            keys.setdefault(kind, set()).add(ident)
            if full_url:
                keys[kind].add(full_url[:300])
            for text in references(resource):
                if text.startswith(URN_PREFIXES):
                    urns.add(text)
                elif (pair := split_reference(text, self.served)) is not None:
                    keys.setdefault(pair[0], set()).add(pair[1])
        for kind, idents in keys.items():
            self._load(conn, id_map.c.source_type == kind, sorted(idents))
        self._load(conn, among(conn, id_map.c.source_type, self.served), sorted(urns))

    def _load(self, conn: Connection, condition: Any, idents: list[str]) -> None:
        columns = (id_map.c.source_type, id_map.c.source_id, id_map.c.target_id)
        for start in range(0, len(idents), CHUNK):
            query = select(*columns, id_map.c.content_hash).where(
                condition, among(conn, id_map.c.source_id, idents[start : start + CHUNK])
            )
            for kind, ident, target, digest in conn.execute(query):
                self._remember(kind, ident, target, digest)

    def _remember(self, kind: str, ident: str, target: str, digest: str | None) -> None:
        self.known[(kind, ident)] = f"{kind}/{target}"
        self.hashes[(kind, ident)] = digest
        if ident.startswith(URN_PREFIXES) or "/" in ident:
            self.urns[ident] = f"{kind}/{target}"

    def target(self, kind: str, ident: str) -> str | None:
        """Our `Type/id` for a source key, if imported."""
        return self.known.get((kind, ident))

    def unchanged(self, kind: str, ident: str, digest: str) -> bool:
        """Whether the resource imported under this key was written with this content
        (rows of imports before content hashes count as unchanged)."""
        stored = self.hashes.get((kind, ident))
        return stored is None or stored == digest

    def add(self, kind: str, idents: Iterable[str], target: str, digest: str) -> None:
        """Record that the source keys `idents` of type `kind` became our id `target`."""
        now = utc_now()
        for ident in dict.fromkeys(idents):
            if (kind, ident) in self.known:
                continue
            self._remember(kind, ident, target, digest)
            self.pending.append(
                {
                    "source_type": kind,
                    "source_id": ident,
                    "target_id": target,
                    "content_hash": digest,
                    "update_date": now,
                }
            )

    def changed(self, kind: str, target: str, digest: str) -> None:
        """Our resource `kind/target` was updated to the content `digest`."""
        for key, known in self.known.items():
            if key[0] == kind and known == f"{kind}/{target}":
                self.hashes[key] = digest
        self.rehashed[(kind, target)] = digest

    def flush(self, conn: Connection) -> None:
        """Write the pairs added since the last flush (in the caller's transaction).

        A pair already there (written by an import that ran meanwhile) is left alone.
        PostgreSQL: the pairs in one COPY, in a savepoint (a run holds the import lock: no
        other import writes pairs meanwhile), and only if one is there after all in one
        INSERT that leaves it alone. The INSERT's five array parameters cost the importer
        2 % of its time to encode, its execution the server 0.8 s per 100,000 resources."""
        if self.pending and conn.dialect.name == "postgresql":
            try:
                with conn.begin_nested():
                    insert_many(conn, id_map, self.pending)
            except IntegrityError:
                columns = {name: [row[name] for row in self.pending] for name in MAP_COLUMNS}
                conn.execute(_insert_arrays(), columns)
        elif self.pending:
            conn.execute(sqlite.insert(id_map).on_conflict_do_nothing(), self.pending)
        self.pending = []
        for (kind, target), digest in self.rehashed.items():
            conn.execute(
                id_map.update()
                .where(id_map.c.source_type == kind, id_map.c.target_id == target)
                .values(content_hash=digest, update_date=utc_now())
            )
        self.rehashed = {}

    def rewrite(self, value: Any, names: dict[str, str] | None = None) -> tuple[Any, list[str]]:
        """A copy of a resource with every reference to an imported resource replaced by
        ours, and the references to a served type (or urn) that no imported resource has:
        those are left as sent, for the caller to wait for them or to refuse them.

        `names` (a Bundle's fullUrl -> Type/id) turns a `urn:uuid:` naming an entry of a
        type not served here into `Type/id`, for the mapping to judge."""
        unresolved: list[str] = []
        return self._rewrite(value, names or {}, unresolved), unresolved

    def _rewrite(self, value: Any, names: dict[str, str], unresolved: list[str]) -> Any:
        if isinstance(value, dict):
            return {
                key: self._reference(item, names, unresolved)
                if key == "reference" and isinstance(item, str)
                else self._rewrite(item, names, unresolved)
                for key, item in value.items()
            }
        if isinstance(value, list):
            return [self._rewrite(item, names, unresolved) for item in value]
        return value

    def _reference(self, text: str, names: dict[str, str], unresolved: list[str]) -> str:
        if text.startswith(URN_PREFIXES):
            found = self.urns.get(text)
            local = names.get(text)
            if found is None and local and local.split("/")[0] not in self.served:
                return local
        else:
            pair = split_reference(text, self.served)
            if pair is None:
                return text  # a type not served here, a contained (#) or logical reference
            found = self.known.get(pair) or self.urns.get(text)
        if found is None:
            unresolved.append(text)
            return text
        return found


@cache
def _insert_arrays() -> Any:
    """PostgreSQL: the pairs of a batch in one INSERT ... SELECT FROM unnest(arrays), of
    one shape whatever their count (compiled once), a pair already there left alone. One
    INSERT per pair cost the server a bind and an execution each: a tenth of its time in
    an import."""
    rows = array_rows(id_map, MAP_COLUMNS)
    statement = postgresql.insert(id_map).from_select(
        list(MAP_COLUMNS), select(*(rows.c[name] for name in MAP_COLUMNS))
    )
    return statement.on_conflict_do_nothing(index_elements=list(id_map.primary_key.columns))
