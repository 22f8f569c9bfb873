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


OPERATIONS = ("add", "remove", "replace", "move", "copy", "test")


def apply_json_patch(stored: dict[str, Any], operations: Any) -> dict[str, Any]:
    """`stored` with the RFC 6902 operations applied, all or nothing.

    The operations are applied one by one (on copies) so that a failure names its
    operation and path in FHIR terms, never the library's message (which prints the whole
    resource as a Python dict).
    """
    if not isinstance(operations, list):
        raise Invalid("A JSON Patch body must be an array of operations")
    fhir_type = str(stored.get("resourceType", ""))
    patched: Any = stored
    for index, operation in enumerate(operations):
        _check_operation(index, operation)
        try:
            patched = jsonpatch.apply_patch(patched, [operation])
        except jsonpatch.JsonPatchTestFailed:
            reason = "the value differs from the tested one"
            raise _failure(index, operation, fhir_type, reason) from None
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError):
            raise _failure(index, operation, fhir_type, _missing(operation)) from None
    if not isinstance(patched, dict):
        raise Invalid("The JSON Patch must leave a resource object")
    return patched


def _check_operation(index: int, operation: Any) -> None:
    """400 naming the operation when it is not a well-formed RFC 6902 operation."""
    where = f"JSON Patch operation {index}"
    if not isinstance(operation, dict):
        raise Invalid(f"{where} must be an object with 'op' and 'path'")
    name = operation.get("op")
    if name not in OPERATIONS:
        raise Invalid(f"{where}: 'op' must be one of {', '.join(OPERATIONS)}, got {name!r}")
    for member in ("path", "from") if name in ("move", "copy") else ("path",):
        pointer = operation.get(member)
        if not isinstance(pointer, str) or (pointer and not pointer.startswith("/")):
            raise Invalid(f"{where} ({name}): '{member}' must be a JSON Pointer such as /status")
    if name in ("add", "replace", "test") and "value" not in operation:
        raise Invalid(f"{where} ({name} {operation['path']}): 'value' is required")


def _missing(operation: dict[str, Any]) -> str:
    """Why an operation on a path that does not fit the resource failed."""
    name = operation["op"]
    if name == "add":
        return "its parent element does not exist, or the list index is out of range"
    if name in ("move", "copy"):
        return f"{operation['from'] or '/'} does not exist, or the target cannot be set"
    return "no such element in the resource"


def _failure(index: int, operation: dict[str, Any], fhir_type: str, reason: str) -> Invalid:
    path = operation["path"]
    return Invalid(
        f"JSON Patch operation {index} ({operation['op']} {path or '/'}) failed: {reason}",
        expression=[fhir_path(fhir_type, path)],
    )


def fhir_path(fhir_type: str, pointer: str) -> str:
    """The FHIRPath of a JSON Pointer: `/name/0/family` -> `Patient.name[0].family`."""
    path = fhir_type
    for token in pointer.split("/")[1:]:
        token = token.replace("~1", "/").replace("~0", "~")
        path += f"[{token}]" if token.isdigit() or token == "-" else f".{token}"
    return path
