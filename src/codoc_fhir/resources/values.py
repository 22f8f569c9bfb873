"""What the Observation kinds and the dosage of MedicationRequest share.

- `value[x]` of every type <-> the value columns (val_numeric, operator, data_unit,
  unit_system, unit_code, val_text, value_code_system, value_code, value_kind) and
  referenceRange[0] <-> lower_bound / upper_bound, as far as they fit;
- checks that keep a value inside its column (length, number range) so that the database
  never refuses a row the API accepted;
- `get_path` / `put_path`: members deep inside an element.

The answers here are what the columns give; what else was sent (a unit's display, a range's
text, a Ratio) is kept with the row by fhir/kept.py and merged back on every read.
"""

from __future__ import annotations

import math
import re
from itertools import pairwise
from typing import Any

from sqlalchemy import Column

from codoc_fhir.fhir.errors import Invalid

COMPARATORS = ("<", "<=", ">=", ">")
OBSERVATION_STATUS = ("registered", "preliminary", "final", "amended", "cancelled")
MAX_INTEGER = 2**31 - 1

Path = tuple[str | int, ...]

# --- column checks ---------------------------------------------------------------------


def fit(column: Column, value: Any, field: str) -> str | None:
    """A text value checked against the column's length (400 when longer)."""
    if value is None:
        return None
    text = str(value)
    length = getattr(column.type, "length", None)
    if length is not None and len(text) > length:
        raise Invalid(
            f"{field} is too long: at most {length} characters are stored", expression=[field]
        )
    return text


def number(value: Any, field: str) -> float | None:
    """A FHIR decimal as a finite float (400 when it cannot be stored)."""
    if value is None:
        return None
    try:
        result = float(value)
    except (OverflowError, ValueError, TypeError):
        raise Invalid(f"{field} is not a storable number", expression=[field]) from None
    if not math.isfinite(result):
        raise Invalid(f"{field} is not a storable number", expression=[field])
    return result


def whole_number(value: Any, field: str) -> int | None:
    """A non-negative whole number that fits an INTEGER column."""
    if value is None:
        return None
    result = number(value, field)
    if result is None or not result.is_integer() or not 0 <= result <= MAX_INTEGER:
        raise Invalid(f"{field} must be a whole number the warehouse can store", expression=[field])
    return int(result)


def decimal_out(value: float | None) -> int | float | None:
    """A stored float answered without a spurious `.0` (95, not 95.0)."""
    if value is None:
        return None
    return int(value) if value.is_integer() and abs(value) < 1e15 else value


# --- paths inside elements -------------------------------------------------------------------


def get_path(tree: Any, path: Path) -> Any:
    """The member of `tree` at `path` (None when any step is missing)."""
    for part in path:
        if isinstance(part, int):
            tree = tree[part] if isinstance(tree, list) and len(tree) > part else None
        else:
            tree = tree.get(part) if isinstance(tree, dict) else None
        if tree is None:
            return None
    return tree


def put_path(tree: dict[str, Any], path: Path, value: Any) -> None:
    """Put `value` at `path` inside `tree`, a tree being built (changed in place, never
    copied: the dosage of every exported prescription is built this way), creating objects
    and first list items as needed and replacing a member of the wrong shape."""
    node: Any = tree
    for step, after in pairwise(path):
        empty: Any = [] if isinstance(after, int) else {}
        child = _member(node, step)
        if not isinstance(child, type(empty)):
            child = empty
            node[step] = child
        node = child
    _member(node, path[-1])
    node[path[-1]] = value


def _member(node: Any, step: str | int) -> Any:
    """The member of `node` at `step` (None when absent); a list grows to hold the index."""
    if isinstance(step, int):
        while len(node) <= step:
            node.append({})
        return node[step]
    return node.get(step)


# --- value[x] --------------------------------------------------------------------------

QUANTITY_PATHS: dict[str, Path] = {
    "val_numeric": ("value",),
    "operator": ("comparator",),
    "data_unit": ("unit",),
    "unit_system": ("system",),
    "unit_code": ("code",),
}
# value[x] types answered from val_text as they were sent (value_kind names the type)
TEXT_KINDS = {"valueString": "string", "valueDateTime": "dateTime", "valueTime": "time"}


def value_element(body: dict[str, Any]) -> str | None:
    """The one value[x] element sent (None when there is none)."""
    sent = [name for name in body if CHOICE_VALUE.fullmatch(name) and body[name] is not None]
    if len(sent) > 1:
        raise Invalid("At most one value[x] may be sent", expression=sent)
    return sent[0] if sent else None


CHOICE_VALUE = re.compile(r"value[A-Z][A-Za-z]*")


def value_columns(table: Any, body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(column values, markers for extra_json) for the value[x] and referenceRange.

    Every value[x] type is accepted: numbers go to val_numeric (valueQuantity with its
    unit, valueInteger), texts to val_text (valueString, valueDateTime, valueTime,
    valueBoolean as true/false), a CodeableConcept's first coding to the value code
    columns; the other types (Period, Range, Ratio, SampledData...) only name their type in
    value_kind, the value itself being kept with the row (fhir_kept) like everything the
    columns do not hold.
    """
    columns: dict[str, Any] = {name: None for name in (*QUANTITY_PATHS, "val_text")}
    columns.update(value_kind=None, value_code_system=None, value_code=None)
    markers: dict[str, Any] = {}
    name = value_element(body)
    value: Any = body[name] if name else None
    if name == "valueQuantity":
        columns.update(_quantity_columns(table, value, name))
    elif name == "valueInteger":
        columns["val_numeric"] = number(value, name)
    elif name == "valueBoolean":
        columns["val_text"] = "true" if value else "false"
    elif name in TEXT_KINDS:
        columns["val_text"] = fit(table.c.val_text, value, name)
    elif name == "valueCodeableConcept":
        columns.update(_concept_columns(table, value, name))
        if get_path(value, ("coding", 0, "display")) is None and value.get("text"):
            markers["valueLabel"] = "text"  # val_text came from text, not from a display
    if name:
        columns["value_kind"] = value_kind(name)
    columns.update(_range_columns(body, columns))
    return columns, markers


def value_kind(element: str) -> str:
    """value_kind of a value[x] element: quantity, string, codeable, or the type's name."""
    kind = element.removeprefix("value")
    known = {"Quantity": "quantity", "String": "string", "CodeableConcept": "codeable"}
    return known.get(kind, kind[0].lower() + kind[1:])[:12]


def _quantity_columns(table: Any, quantity: dict[str, Any], field: str) -> dict[str, Any]:
    comparator = quantity.get("comparator")
    if comparator is not None and comparator not in COMPARATORS:
        raise Invalid(
            f"Invalid {field}.comparator {comparator!r}. Must be one of: {', '.join(COMPARATORS)}",
            expression=[f"{field}.comparator"],
        )
    return {
        "val_numeric": number(quantity.get("value"), f"{field}.value"),
        "operator": comparator,
        "data_unit": fit(table.c.data_unit, quantity.get("unit"), f"{field}.unit"),
        "unit_system": fit(table.c.unit_system, quantity.get("system"), f"{field}.system"),
        "unit_code": fit(table.c.unit_code, quantity.get("code"), f"{field}.code"),
    }


def _concept_columns(table: Any, concept: dict[str, Any], field: str) -> dict[str, Any]:
    label = get_path(concept, ("coding", 0, "display")) or concept.get("text")
    return {
        "value_code_system": fit(
            table.c.value_code_system, get_path(concept, ("coding", 0, "system")), field
        ),
        "value_code": fit(table.c.value_code, get_path(concept, ("coding", 0, "code")), field),
        "val_text": fit(table.c.val_text, label, field),
    }


def _range_columns(body: dict[str, Any], value: dict[str, Any]) -> dict[str, Any]:
    """referenceRange[0].low/high values -> the bounds, when they are in the value's unit
    (or name none). A range in another unit fits no column: it is kept with the row."""
    ranges = body.get("referenceRange") or []
    bounds: dict[str, float | None] = {"lower_bound": None, "upper_bound": None}
    ends = {end: get_path(ranges, (0, end)) for end in ("low", "high")}
    if any(_other_unit(quantity, value) for quantity in ends.values()):
        return bounds
    for end, column in (("low", "lower_bound"), ("high", "upper_bound")):
        if ends[end] is not None:
            bounds[column] = number(ends[end].get("value"), f"referenceRange[0].{end}.value")
    return bounds


def _other_unit(quantity: dict[str, Any] | None, value: dict[str, Any]) -> bool:
    if quantity is None:
        return False
    unit, code = quantity.get("unit"), quantity.get("code")
    return (unit is not None and unit != value["data_unit"]) or (
        code is not None and code != value["unit_code"]
    )


def value_answer(row: Any, markers: dict[str, Any]) -> dict[str, Any]:
    """value[x] and referenceRange as the columns give them (the kept elements complete
    them: a unit's display, a second coding, a range's text...)."""
    answer: dict[str, Any] = {}
    kind = row["value_kind"] or _guess_kind(row)
    if kind == "quantity":
        quantity = {str(path[0]): row[column] for column, path in QUANTITY_PATHS.items()}
        quantity["value"] = decimal_out(row["val_numeric"])
        answer["valueQuantity"] = _present(quantity)
    elif kind == "integer" and row["val_numeric"] is not None:
        answer["valueInteger"] = int(row["val_numeric"])
    elif kind == "boolean" and row["val_text"] in ("true", "false"):
        answer["valueBoolean"] = row["val_text"] == "true"
    elif kind in TEXT_KINDS.values() and row["val_text"] is not None:
        element = next(name for name, text_kind in TEXT_KINDS.items() if text_kind == kind)
        answer[element] = row["val_text"]
    elif kind == "codeable":
        answer["valueCodeableConcept"] = _concept_answer(row, markers)
    ranges = _range_answer(row)
    if ranges:
        answer["referenceRange"] = ranges
    return {name: value for name, value in answer.items() if value}


def _present(members: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in members.items() if value is not None}


def _guess_kind(row: Any) -> str | None:
    """Rows loaded by other means than the API may lack value_kind."""
    if row["val_numeric"] is not None:
        return "quantity"
    if row["value_code"] is not None:
        return "codeable"
    return "string" if row["val_text"] is not None else None


def _concept_answer(row: Any, markers: dict[str, Any]) -> dict[str, Any]:
    coding = _present({"system": row["value_code_system"], "code": row["value_code"]})
    if not coding or markers.get("valueLabel") == "text":
        return _present({"coding": [coding] if coding else None, "text": row["val_text"]})
    if row["val_text"] is not None:
        coding["display"] = row["val_text"]
    return {"coding": [coding]}


def _range_answer(row: Any) -> list[dict[str, Any]] | None:
    """referenceRange[0] low/high values (their unit is kept as sent with the range)."""
    ends = {
        end: {"value": decimal_out(row[column])}
        for end, column in (("low", "lower_bound"), ("high", "upper_bound"))
        if row[column] is not None
    }
    return [ends] if ends else None
