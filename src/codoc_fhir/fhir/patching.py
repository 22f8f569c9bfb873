"""PATCH bodies: a JSON merge of the given fields, or a JSON Patch (RFC 6902)."""

from __future__ import annotations

import copy
import re
from typing import Any

import jsonpatch

from codoc_fhir.fhir.errors import Invalid


def merge_patch(stored: dict[str, Any], changes: Any, fhir_type: str, ident: str) -> dict:
    """The stored resource with the top-level fields of `changes` replaced (null removes).

    Setting one choice of a value[x] drops the stored other choices, never one the same
    PATCH sends: a PATCH sending two choices gives a resource with both, which the
    update's validation then refuses exactly as it refuses the same PUT.
    """
    if not isinstance(changes, dict):
        raise Invalid("A PATCH body must be a JSON object of the fields to change")
    sent_type = changes.get("resourceType", fhir_type)
    if sent_type != fhir_type:
        raise Invalid(f"resourceType must be {fhir_type}, got {sent_type!r}")
    if changes.get("id") is not None and str(changes["id"]) != ident:
        raise Invalid(f"The id in the body ({changes['id']}) differs from the URL ({ident})")
    merged = copy.deepcopy(stored)
    for name, value in changes.items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
        _drop_other_choices(merged, name, keep=changes)
    return merged


_CHOICE_SUFFIX = re.compile(
    r"^([a-z][A-Za-z]*?)(Boolean|DateTime|Date|Time|String|Integer|Decimal|Quantity|Period|"
    r"CodeableConcept|Reference|Range|Ratio|Age|Instant|SampledData|Attachment|Coding)$"
)


def _drop_other_choices(merged: dict[str, Any], name: str, keep: dict[str, Any]) -> None:
    """Setting `deceasedDateTime` removes a stored `deceasedBoolean` (one value[x] only),
    unless `keep` (the PATCH body) sets it too."""
    match = _CHOICE_SUFFIX.match(name)
    if not match:
        return
    for other in [key for key in merged if key != name and key not in keep]:
        other_match = _CHOICE_SUFFIX.match(other)
        if other_match and other_match.group(1) == match.group(1):
            del merged[other]


def apply_json_patch(stored: dict[str, Any], operations: Any) -> dict[str, Any]:
    """`stored` with the RFC 6902 operations applied."""
    if not isinstance(operations, list):
        raise Invalid("A JSON Patch body must be an array of operations")
    try:
        patched = jsonpatch.apply_patch(stored, operations)
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError) as error:
        raise Invalid(f"Invalid JSON Patch: {error}") from None
    if not isinstance(patched, dict):
        raise Invalid("The JSON Patch must leave a resource object")
    return patched
