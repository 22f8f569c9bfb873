"""The searchset Bundle: total, self/next/previous links, entries, and the subsets of a
resource a client may ask for (`_elements`, `_summary`), on searches and reads alike."""

from __future__ import annotations

from functools import cache
from typing import Any
from urllib.parse import urlencode

from fhir.resources.R4B import get_fhir_model_class

from codoc_fhir.search.execute import SearchResult
from codoc_fhir.search.model import SearchRequest

SUBSETTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
    "display": "subsetted",
}
ALWAYS_KEPT = frozenset({"resourceType", "id", "meta"})


@cache
def mandatory_elements(resource_type: str) -> frozenset[str]:
    """Elements a resource of this type must carry (kept whatever _elements asks)."""
    model = get_fhir_model_class(resource_type)
    names = set()
    for name, info in model.model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        if info.is_required() or extra.get("element_required"):
            names.add(info.alias or name)
    return frozenset(names)


@cache
def summary_elements(resource_type: str) -> frozenset[str]:
    """The elements R4B marks "in summary" for this type (fhir.resources' field metadata),
    with the mandatory ones so that a summary is still a valid resource."""
    model = get_fhir_model_class(resource_type)
    names = set(mandatory_elements(resource_type))
    for name, info in model.model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        if extra.get("summary_element_property"):
            names.add(info.alias or name)
    return frozenset(names)


def _tagged(answer: dict[str, Any]) -> dict[str, Any]:
    meta = dict(answer.get("meta") or {})
    meta["tag"] = [*meta.get("tag", []), SUBSETTED]
    answer["meta"] = meta
    return answer


def summarize(resource: dict[str, Any], mode: str) -> dict[str, Any]:
    """`_summary=true` (summary elements), `text` (text and mandatory elements), `data`
    (all but text), `false` (the resource unchanged); subsets are tagged SUBSETTED."""
    if mode == "false":
        return resource
    kind = resource["resourceType"]
    if mode == "true":
        keep = ALWAYS_KEPT | summary_elements(kind)
    elif mode == "text":
        keep = ALWAYS_KEPT | mandatory_elements(kind) | {"text"}
    else:
        keep = frozenset(key for key in resource if key != "text")
    return _tagged({key: value for key, value in resource.items() if key in keep})


def shape(resource: dict[str, Any], elements: list[str] | None, summary: str) -> dict[str, Any]:
    """The resource as `_elements` (if given) or else `_summary` asks it."""
    return subset(resource, elements) if elements else summarize(resource, summary)


def _wanted(key: str, elements: list[str]) -> bool:
    for name in elements:
        if key == name or (key.startswith(name) and key[len(name) : len(name) + 1].isupper()):
            return True
    return False


def subset(resource: dict[str, Any], elements: list[str]) -> dict[str, Any]:
    """Only the asked elements (plus id, meta and mandatory ones), tagged SUBSETTED."""
    keep = ALWAYS_KEPT | mandatory_elements(resource["resourceType"])
    answer = {
        key: value for key, value in resource.items() if key in keep or _wanted(key, elements)
    }
    return _tagged(answer)


def _link(relation: str, url: str, pairs: list[tuple[str, str]]) -> dict[str, str]:
    query = urlencode(pairs)
    return {"relation": relation, "url": f"{url}?{query}" if query else url}


def searchset(
    request: SearchRequest, result: SearchResult, self_url: str, server_base: str
) -> dict[str, Any]:
    """The Bundle answering `request`; links on `self_url`, fullUrls on `server_base`."""
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
    if result.total is not None:
        bundle["total"] = result.total
    links = [_link("self", self_url, request.applied)]
    if result.next_cursor:
        links.append(_link("next", self_url, [*request.applied, ("_cursor", result.next_cursor)]))
    if result.previous_cursor:
        pairs = [*request.applied, ("_cursor", result.previous_cursor)]
        links.append(_link("previous", self_url, pairs))
    bundle["link"] = links
    entries = []
    for resource in result.matches:
        shown = shape(resource, request.elements, request.summary)
        entries.append(_entry(shown, "match", server_base))
    entries += [_entry(resource, "include", server_base) for resource in result.included]
    if entries:
        bundle["entry"] = entries
    return bundle


def _entry(resource: dict[str, Any], mode: str, server_base: str) -> dict[str, Any]:
    return {
        "fullUrl": f"{server_base}/{resource['resourceType']}/{resource['id']}",
        "resource": resource,
        "search": {"mode": mode},
    }
