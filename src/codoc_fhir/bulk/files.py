"""Reading the files `codoc-fhir import` loads: NDJSON and Bundle JSON.

A file is read as a sequence of `Record`s numbered from 1, so that a checkpoint can say
"the first N are done" and a re-run can skip them:

- NDJSON (`.ndjson`, `.jsonl`, `.ndjson.gz` is not read): one resource per line, numbered
  by line (blank lines count as lines and are skipped);
- JSON (`.json` or anything else): a Bundle (transaction, batch, collection, searchset),
  whose entries are numbered in *load order* (referenced entries first), or a single
  resource.
"""

from __future__ import annotations

import hashlib
import heapq
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from codoc_fhir.fhir.references import references

NDJSON_SUFFIXES = (".ndjson", ".jsonl")
BUNDLE_TYPES = ("transaction", "batch", "collection", "searchset")
# Referenced first: organizations, then patients, then encounters, then the rest (the
# results before the reports naming them).
TYPE_RANK = {
    "Organization": 0,
    "Location": 1,
    "Practitioner": 1,
    "Patient": 2,
    "Encounter": 3,
    "Observation": 4,
}
OTHER_RANK = 9
HASH_CHUNK = 1024 * 1024
SNIFF_BYTES = 4 * 1024 * 1024
_RESOURCE_TYPE = re.compile(rb'"resourceType"\s*:\s*"([A-Za-z]+)"')
# Set by the source server, meaningless here (ours are assigned on create).
DROPPED_FIELDS = ("id", "meta")


class FileUnreadable(Exception):
    """The file is not NDJSON nor a Bundle/resource JSON document."""


@dataclass
class Record:
    """One resource of a file, its position (line or load-order rank) and its fullUrl."""

    position: int
    resource: Any
    full_url: str | None = None
    size: int = 1  # progress units this record accounts for (bytes or 1 entry)
    error: str | None = None  # the line is not JSON
    # In a Bundle: each entry's fullUrl -> `Type/id` (for entries of types not served).
    names: dict[str, str] | None = None
    entry: int | None = None  # in a Bundle: the entry's index in Bundle.entry

    @property
    def resource_type(self) -> str:
        kind = self.resource.get("resourceType") if isinstance(self.resource, dict) else None
        return kind if isinstance(kind, str) else "(no resourceType)"


def as_written(resource: dict[str, Any]) -> dict[str, Any]:
    """A source resource without what the import drops (`DROPPED_FIELDS`)."""
    return {key: value for key, value in resource.items() if key not in DROPPED_FIELDS}


def import_key(path: Path) -> str:
    """What identifies a file for checkpoints: a hash of its whole content, so that a moved
    or renamed file keeps its progress and an edited one (even in place, same size) is
    read again. Hashing reads the file once more: about a second per GB."""
    digest = hashlib.blake2b(digest_size=20)
    with path.open("rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
    return "content:" + digest.hexdigest()


def load_rank(path: Path) -> tuple[int, int]:
    """Where a file goes in the run, Organization first: an NDJSON file by the type of its
    first resource (an export holds one type a file); a JSON file (a Bundle, which orders
    its own entries) by the first-ranked type it holds, after NDJSON files of that rank.
    So Synthea's hospital and practitioner Bundles load before the patients' ones.

    Files in any order load all the same (a resource is retried once what it references
    is created); this ordering only spares the retries, and the memory they hold."""
    if not is_ndjson(path):
        kinds = {match.decode() for match in _RESOURCE_TYPE.findall(path.read_bytes())}
        return min((TYPE_RANK.get(kind, OTHER_RANK) for kind in kinds), default=OTHER_RANK), 1
    with path.open("rb") as handle:
        for line in handle:
            if len(line) > SNIFF_BYTES:
                break
            if line.strip():
                try:
                    kind = orjson.loads(line).get("resourceType")
                except (orjson.JSONDecodeError, AttributeError):
                    break
                return TYPE_RANK.get(str(kind), OTHER_RANK), 0
    return OTHER_RANK, 0


def load_order_of_files(paths: list[Path]) -> list[Path]:
    """The files in the order they are loaded: `load_rank`, then as given."""
    ranked = sorted(enumerate(paths), key=lambda item: (load_rank(item[1]), item[0]))
    return [path for _, path in ranked]


def is_ndjson(path: Path) -> bool:
    return path.name.lower().endswith(NDJSON_SUFFIXES)


@dataclass
class SourceFile:
    """A file to import: its records, skipping the first `start` ones, and its size in
    progress units (bytes for NDJSON, entries for a Bundle)."""

    path: Path

    def __post_init__(self) -> None:
        self._entries: list[Record] | None = None
        if not is_ndjson(self.path):
            self._entries = read_json_document(self.path)

    @property
    def unit(self) -> str:
        return "B" if self._entries is None else "entry"

    @property
    def total(self) -> int:
        if self._entries is None:
            return os.path.getsize(self.path)
        return len(self._entries)

    def records_and_lines(self, start: int) -> Iterator[tuple[Record, bytes | None]]:
        """Records after the first `start`, each with the line it was read from (NDJSON;
        None for the rest); the units skipped come first as a Record of position 0 and
        resource None (so the progress bar starts where the file resumes)."""
        if self._entries is None:
            yield from _ndjson_records(self.path, start)
            return
        if start:
            yield Record(0, None, size=min(start, len(self._entries))), None
        for record in self._entries[start:]:
            yield record, None


def _ndjson_records(path: Path, start: int) -> Iterator[tuple[Record, bytes | None]]:
    skipped = 0
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if number <= start:
                skipped += len(line)
                continue
            if skipped:
                yield Record(0, None, size=skipped), None
                skipped = 0
            if not line.strip():
                yield Record(number, None, size=len(line)), None
                continue
            try:
                yield Record(number, orjson.loads(line), size=len(line)), line
            except orjson.JSONDecodeError as error:
                yield Record(number, None, size=len(line), error=f"not JSON: {error}"), None
    if skipped:
        yield Record(0, None, size=skipped), None


def read_json_document(path: Path) -> list[Record]:
    """The entries of a Bundle in load order, or the one resource of a JSON file."""
    try:
        document = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as error:
        raise FileUnreadable(
            f"{path}: not a JSON document ({error}); NDJSON files must end in .ndjson"
        ) from None
    if not isinstance(document, dict) or "resourceType" not in document:
        raise FileUnreadable(f"{path}: not a FHIR resource (no resourceType)")
    if document["resourceType"] != "Bundle":
        return [Record(1, document)]
    if document.get("type") not in BUNDLE_TYPES:
        raise FileUnreadable(
            f"{path}: Bundle type {document.get('type')!r} is not imported "
            f"(one of {', '.join(BUNDLE_TYPES)})"
        )
    entries = [
        (item.get("resource"), item.get("fullUrl"))
        for item in document.get("entry") or []
        if isinstance(item, dict)
    ]
    ordered = load_order(entries)
    names = {
        full_url: f"{resource['resourceType']}/{resource.get('id') or full_url.split(':')[-1]}"
        for resource, full_url in entries
        if full_url and isinstance(resource, dict) and resource.get("resourceType")
    }
    return [
        Record(rank, entries[index][0], entries[index][1], names=names, entry=index)
        for rank, index in enumerate(ordered, start=1)
    ]


def entry_names(resource: Any, full_url: str | None) -> list[str]:
    """How other entries may reference this one: its fullUrl and `Type/id`."""
    names = [full_url] if full_url else []
    if isinstance(resource, dict) and resource.get("id") and resource.get("resourceType"):
        names.append(f"{resource['resourceType']}/{resource['id']}")
    return names


def load_order(entries: list[tuple[Any, str | None]]) -> list[int]:
    """Entry indexes so that an entry comes after the entries it references (by fullUrl
    or Type/id), ties broken by type (Organization, Patient, Encounter, others) then by
    position; entries in a reference cycle keep that order after the others."""
    owner: dict[str, int] = {}
    for index, (resource, full_url) in enumerate(entries):
        for name in entry_names(resource, full_url):
            owner.setdefault(name, index)
    needs = {
        index: {owner[ref] for ref in references(resource) if owner.get(ref, index) != index}
        for index, (resource, _) in enumerate(entries)
    }
    users: dict[int, list[int]] = {}
    for index, wanted in needs.items():
        for other in wanted:
            users.setdefault(other, []).append(index)

    def rank(index: int) -> tuple[int, int]:
        resource = entries[index][0]
        kind = resource.get("resourceType") if isinstance(resource, dict) else None
        return (TYPE_RANK.get(str(kind), OTHER_RANK), index)

    ready = [rank(index) for index, wanted in needs.items() if not wanted]
    heapq.heapify(ready)
    ordered: list[int] = []
    while ready:
        _, index = heapq.heappop(ready)
        ordered.append(index)
        for user in users.get(index, []):
            needs[user].discard(index)
            if not needs[user]:
                heapq.heappush(ready, rank(user))
    placed = set(ordered)
    ordered.extend(sorted((i for i in range(len(entries)) if i not in placed), key=rank))
    return ordered
