"""Reading a batch or transaction Bundle: its entries, their transaction processing
order, and the fullUrls of POST entries rewritten to the ids assigned.

An entry is named by its fullUrl: a `urn:uuid:`, or an absolute URL such as
`http://hl7.org/fhir/Patient/example`, which the other entries may also name by a
relative reference (`Patient/example`) read against their own fullUrl's base, as FHIR
resolves references inside a Bundle."""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Any

import orjson

from codoc_fhir import FHIR_VERSION
from codoc_fhir.fhir.errors import FhirError, Invalid
from codoc_fhir.fhir.references import references
from codoc_fhir.fhir.validation import validate_resource

BASE = f"/v{FHIR_VERSION}"
ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}


@dataclass
class Entry:
    """One request of the Bundle: its position, method, URL and body."""

    index: int
    method: str
    url: str
    resource: Any = None
    full_url: str | None = None
    if_match: str | None = None
    if_none_exist: str | None = None

    @property
    def label(self) -> str:
        return f"Bundle.entry[{self.index}] ({self.method} {self.url})"


# --- reading the Bundle --------------------------------------------------------------------


def parse_bundle(body: Any) -> tuple[str, list[Entry]]:
    """The Bundle type and its entries; 400 for anything but a valid batch or transaction."""
    entries = body.get("entry") if isinstance(body, dict) else None
    _validate_shell(body, entries)
    kind = body.get("type")
    if kind not in ("transaction", "batch"):
        raise Invalid(
            f"Bundle type {kind!r} cannot be posted here: send a transaction or a batch",
            expression=["Bundle.type"],
        )
    return kind, [_entry(index, item) for index, item in enumerate(entries or [])]


def _validate_shell(body: Any, entries: Any) -> None:
    """The Bundle checked against the R4B model without its entries' resources (each is
    checked by its kind when its entry runs).

    The model checks each entry on its own, and one costs about as much as a small
    resource: a Bundle of 100 entries whose requests are all `POST Procedure` would pay
    for the same check 100 times. So the shell first goes with each distinct entry once,
    its fullUrl apart (an entry of its own: fullUrls are what differ from one entry to
    the next in a Synthea Bundle). Only when that is refused is the whole shell checked
    again, for the error to name the entry at fault."""
    if not isinstance(entries, list):
        validate_resource(body, "Bundle")
        return
    shells = [_without_resource(item) for item in entries]
    try:
        validate_resource(dict(body, entry=_distinct_parts(shells)), "Bundle")
    except FhirError:
        validate_resource(dict(body, entry=shells), "Bundle")
        raise


def _without_resource(item: Any) -> Any:
    return {k: v for k, v in item.items() if k != "resource"} if isinstance(item, dict) else item


def _distinct_parts(shells: list[Any]) -> list[Any]:
    """Each entry's fullUrl as an entry of its own, then each distinct rest of an entry
    once (anything not an object kept as it is, for the model to refuse)."""
    parts: list[Any] = []
    rests: dict[bytes, Any] = {}
    for shell in shells:
        if not isinstance(shell, dict):
            parts.append(shell)
            continue
        if "fullUrl" in shell:
            parts.append({"fullUrl": shell["fullUrl"]})
        rest = {key: value for key, value in shell.items() if key != "fullUrl"}
        rests.setdefault(orjson.dumps(rest, option=orjson.OPT_SORT_KEYS), rest)
    return parts + list(rests.values())


def _entry(index: int, item: dict[str, Any]) -> Entry:
    request = item.get("request")
    if not isinstance(request, dict) or not request.get("method") or not request.get("url"):
        raise Invalid(
            f"Bundle.entry[{index}] needs request.method and request.url",
            expression=[f"Bundle.entry[{index}].request"],
        )
    return Entry(
        index=index,
        method=str(request["method"]).upper(),
        url=_relative(str(request["url"])),
        resource=item.get("resource"),
        full_url=item.get("fullUrl"),
        if_match=request.get("ifMatch"),
        if_none_exist=request.get("ifNoneExist"),
    )


def _relative(url: str) -> str:
    """`http://host/v4.3.0/Patient/1` and `/Patient/1` as `Patient/1`."""
    if "://" in url and BASE + "/" in url:
        url = url.split(BASE + "/", 1)[1]
    return url.lstrip("/")


# --- urn:uuid references -------------------------------------------------------------------


def named_url(reference: str, full_url: str | None) -> str:
    """The absolute URL a reference names, read against its entry's fullUrl: `Patient/1` in
    the entry `http://example.org/fhir/Observation/2` names `http://example.org/fhir/Patient/1`
    (a reference that is already absolute, a urn or a fragment is itself)."""
    relative = "://" not in reference and not reference.startswith(("urn:", "#", "/"))
    if relative and full_url and "://" in full_url and reference.count("/") == 1:
        base = full_url.rsplit("/", 2)[0]
        return f"{base}/{reference}"
    return reference


def rewrite(value: Any, assigned: dict[str, str], full_url: str | None = None) -> Any:
    """A copy of `value` with every reference to an assigned fullUrl replaced by Type/id
    (`full_url`: the entry's own, against which relative references are read)."""
    if isinstance(value, dict):
        return {
            key: _assigned(item, assigned, full_url)
            if key == "reference" and isinstance(item, str)
            else rewrite(item, assigned, full_url)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [rewrite(item, assigned, full_url) for item in value]
    return value


def _assigned(reference: str, assigned: dict[str, str], full_url: str | None) -> str:
    found = assigned.get(reference)
    if found is None:
        found = assigned.get(named_url(reference, full_url))
    return reference if found is None else found


def rewrite_text(text: str | None, assigned: dict[str, str]) -> str | None:
    """URLs and conditions may name an entry by its fullUrl too (`subject=urn:uuid:...`)."""
    if text:
        for full_url, target in assigned.items():
            if full_url in text:
                text = text.replace(full_url, target)
    return text


def transaction_order(entries: list[Entry]) -> list[Entry]:
    """DELETE, POST, PUT/PATCH, GET; a POST after the POSTs whose fullUrl it references.

    400 when POSTs reference each other in a circle (ids are assigned on insert).
    """
    posts = [entry for entry in entries if entry.method == "POST"]
    by_url = {entry.full_url: entry for entry in posts if entry.full_url}
    needs = {
        entry.index: {
            by_url[url].index
            for url in (named_url(ref, entry.full_url) for ref in references(entry.resource))
            if url in by_url and by_url[url] is not entry
        }
        for entry in posts
    }
    users: dict[int, list[int]] = {}
    for index, wanted in needs.items():
        for other in wanted:
            users.setdefault(other, []).append(index)
    ready = [index for index, wanted in needs.items() if not wanted]
    heapq.heapify(ready)
    ordered: list[int] = []
    while ready:
        index = heapq.heappop(ready)
        ordered.append(index)
        for user in users.get(index, []):
            needs[user].discard(index)
            if not needs[user]:
                heapq.heappush(ready, user)
    if len(ordered) < len(posts):
        raise Invalid("Entries of the transaction reference each other in a circle")
    position = {index: rank for rank, index in enumerate(ordered)}
    return sorted(entries, key=lambda e: (ORDER.get(e.method, 9), position.get(e.index, 0)))
