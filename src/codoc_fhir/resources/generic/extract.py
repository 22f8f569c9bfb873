"""Search values of a stored resource: its R4B FHIRPath expressions, evaluated by
fhirpathpy, turned into `fhir_search_value` rows (one per value, typed columns).

fhirpathpy has no `resolve()` (there is no server behind it): the one given here answers,
for a reference, a resource of the type the reference names, so the specification's
`subject.where(resolve() is Patient)` keeps the references to patients. Values are cut to
the width of their column; a value of a shape a parameter type cannot index is skipped.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache
from typing import Any

import fhirpathpy
from fhirpathpy.engine.nodes import ResourceNode
from fhirpathpy.models import models

from codoc_fhir.fhir.errors import FhirError
from codoc_fhir.fhir.references import key_number
from codoc_fhir.resources.generic.definitions import ParamDefinition, TypeDefinition
from codoc_fhir.search.types import reference as reference_search
from codoc_fhir.search.types.date import parse_range
from codoc_fhir.search.types.string import fold_text

log = logging.getLogger("codoc_fhir.generic")
MODEL = models["r4"]  # R4B's element types are R4's for every path the parameters use
WIDTH = 500  # the width of the text columns of fhir_search_value
TYPE_WIDTH = 64
ONE_TICK = timedelta(microseconds=1)
OPEN_START = datetime(1, 1, 1, tzinfo=UTC)  # a period with an end only
# Elements of a complex value that are codes, links or dates, not text (a name's `use`).
NOT_TEXT = frozenset({"use", "type", "system", "url", "reference", "id", "period", "extension"})

CONDITIONAL = re.compile(r"^[A-Z][A-Za-z]+\?")
Row = dict[str, Any]


def reference_parts(text: str) -> tuple[str | None, str]:
    """(type, id) a reference names (`Patient/1`, `http://x/fhir/Patient/1/_history/2`);
    (None, the text) for one that names no `Type/id` (`urn:uuid:...`). Search values are
    read by the same rule (search/types/reference.py), so both sides agree."""
    if CONDITIONAL.match(text):
        return None, text  # `Practitioner?identifier=...`: no id to name
    type_name, ident = reference_search.parse(text.split("/_history/", 1)[0], None)
    return (type_name, ident) if type_name else (None, text)


def _resolve(inputs: list[Any]) -> list[Any]:
    """`resolve()`: a bare resource of the type each reference names (for `is Type`)."""
    resolved = []
    for item in inputs:
        reference = item.get("reference") if isinstance(item, dict) else item
        type_name = reference_parts(reference)[0] if isinstance(reference, str) else None
        if type_name is None and isinstance(reference, str) and "?" in reference:
            type_name = reference.split("?", 1)[0]  # a conditional reference, `Patient?...`
        if type_name:
            resolved.append(ResourceNode.create_node({"resourceType": type_name}))
    return resolved


OPTIONS = {"userInvocationTable": {"resolve": {"fn": _resolve, "arity": {0: []}}}}


@cache
def compiled(expression: str) -> Callable[[Any, Any], list[Any]]:
    return fhirpathpy.compile(expression, MODEL, OPTIONS)


def evaluate(param: ParamDefinition, body: dict[str, Any]) -> list[Any]:
    """The values of `param` in `body`; none when the expression fails on it (an index
    must never make a valid resource fail: the failure is logged)."""
    try:
        return list(compiled(param.expression)(body, None))
    except Exception:  # fhirpathpy raises bare Exceptions on what it does not implement
        log.warning("FHIRPath %r failed on a %s", param.expression, body.get("resourceType"))
        return []


def _cut(value: Any, width: int = WIDTH) -> str | None:
    return None if value is None else str(value)[:width]


# --- one converter per parameter type: a value -> column values -----------------------


def token_values(item: Any) -> Iterator[Row]:
    if isinstance(item, bool):
        yield {"token_code": "true" if item else "false"}
    elif isinstance(item, str | int | float | Decimal):
        yield {"token_code": _cut(item)}
    elif isinstance(item, dict):
        if isinstance(item.get("coding"), list):  # CodeableConcept
            for coding in item["coding"]:
                yield from token_values(coding)
        elif item.get("code") is not None:  # Coding, Quantity
            yield {"token_system": _cut(item.get("system")), "token_code": _cut(item["code"])}
        elif item.get("value") is not None:  # Identifier, ContactPoint
            yield {"token_system": _cut(item.get("system")), "token_code": _cut(item["value"])}


def _texts(item: Any) -> Iterator[str]:
    if isinstance(item, str):
        yield item
    elif isinstance(item, list):
        for part in item:
            yield from _texts(part)
    elif isinstance(item, dict):
        for key, part in item.items():
            if key not in NOT_TEXT:
                yield from _texts(part)


def string_values(item: Any) -> Iterator[Row]:
    for text in _texts(item):
        yield {"string_value": _cut(fold_text(text)), "string_exact": _cut(text)}


def _range(text: Any) -> tuple[datetime, datetime] | None:
    if not isinstance(text, str):
        return None
    try:
        return parse_range(text)
    except FhirError:
        return None


def date_values(item: Any) -> Iterator[Row]:
    if isinstance(item, str):
        bounds = _range(item)
        if bounds is not None:
            yield {"date_start": bounds[0], "date_end": bounds[1] - ONE_TICK}
    elif isinstance(item, dict) and ("start" in item or "end" in item):  # Period
        start, end = _range(item.get("start")), _range(item.get("end"))
        if start is not None or end is not None:
            yield {
                "date_start": start[0] if start else OPEN_START,
                "date_end": end[1] - ONE_TICK if end else None,
            }
    elif isinstance(item, dict):  # Timing: its events and its bounds
        for event in item.get("event") or []:
            yield from date_values(event)
        bounds = (item.get("repeat") or {}).get("boundsPeriod")
        if bounds:
            yield from date_values(bounds)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return None
    return float(value)


def number_values(item: Any) -> Iterator[Row]:
    number = _number(item)
    if number is not None:
        yield {"number_value": number}


def quantity_values(item: Any) -> Iterator[Row]:
    if not isinstance(item, dict) or _number(item.get("value")) is None:
        return
    system: Any
    if "currency" in item:  # Money
        system, code = "urn:iso:std:iso:4217", item.get("currency")
    else:
        system, code = item.get("system"), item.get("code") or item.get("unit")
    yield {
        "number_value": _number(item["value"]),
        "quantity_system": _cut(system),
        "quantity_code": _cut(code),
    }


def reference_values(item: Any) -> Iterator[Row]:
    reference = item.get("reference") if isinstance(item, dict) else item
    if not isinstance(reference, str):
        return
    type_name, ident = reference_parts(reference)
    yield {
        "ref_type": _cut(type_name, TYPE_WIDTH),
        "ref_id": _cut(ident),
        "ref_num": key_number(ident) if type_name else None,
    }


def uri_values(item: Any) -> Iterator[Row]:
    if isinstance(item, str):
        yield {"uri_value": _cut(item)}


CONVERTERS: dict[str, Callable[[Any], Iterator[Row]]] = {
    "token": token_values,
    "string": string_values,
    "date": date_values,
    "number": number_values,
    "quantity": quantity_values,
    "reference": reference_values,
    "uri": uri_values,
}


def param_rows(param: ParamDefinition, body: dict[str, Any]) -> list[Row]:
    """The rows of one parameter (column values, without the resource's number)."""
    rows = []
    for item in evaluate(param, body):
        for row in CONVERTERS[param.type](item):
            rows.append({"param_name": param.code, **row})
    return rows


def search_rows(definition: TypeDefinition, body: dict[str, Any]) -> list[Row]:
    """Every search value of `body`, once each (a value reached by two paths is one row)."""
    rows: list[Row] = []
    seen: set[tuple[Any, ...]] = set()
    for param in definition.params.values():
        for row in param_rows(param, body):
            key = tuple(sorted(row.items()))
            if key not in seen:
                seen.add(key)
                rows.append(row)
    return rows


def compartment_patients(definition: TypeDefinition, body: dict[str, Any]) -> list[int]:
    """The patient numbers the compartment parameters name (`Patient/12`), in order."""
    numbers = []
    for code in definition.compartment:
        param = definition.params.get(code)
        if param is None or param.type != "reference":
            continue
        for row in param_rows(param, body):
            if row["ref_type"] == "Patient" and row["ref_num"] is not None:
                numbers.append(row["ref_num"])
    return numbers
