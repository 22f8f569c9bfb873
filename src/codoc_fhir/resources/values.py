"""What the Observation kinds and the dosage of MedicationRequest share.

- `value[x]` (valueQuantity / valueString / valueCodeableConcept) <-> the value columns
  (val_numeric, operator, data_unit, unit_system, unit_code, val_text, value_code_system,
  value_code, value_kind) and referenceRange[0] <-> lower_bound / upper_bound;
- checks that keep a value inside its column (length, number range) so that the database
  never refuses a row the API accepted;
- `split` / `overlay`: an element is stored as its columns plus the rest of it (kept in
  extra_json), and answered as that rest with the column values put back in place.
"""

from __future__ import annotations

import copy
import math
from typing import Any

from sqlalchemy import Column

from codoc_fhir.fhir.errors import Invalid
from codoc_fhir.resources.data_fact import load_extra

VALUE_ELEMENTS = ("valueQuantity", "valueString", "valueCodeableConcept")
KIND_OF_ELEMENT = {
    "valueQuantity": "quantity",
    "valueString": "string",
    "valueCodeableConcept": "codeable",
}
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


# --- split / overlay -------------------------------------------------------------------


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


def _empty(value: Any) -> bool:
    return value is None or value == {} or value == [] or value == ""


def _prune(tree: Any) -> Any:
    """Drop empty members; in lists, empty objects stay as place-holders unless all are."""
    if isinstance(tree, dict):
        kept = {key: _prune(item) for key, item in tree.items()}
        return {key: item for key, item in kept.items() if not _empty(item)}
    if isinstance(tree, list):
        items = [_prune(item) for item in tree]
        return [] if all(_empty(item) for item in items) else items
    return tree


def split(element: Any, paths: list[Path]) -> Any:
    """`element` without the members at `paths` (those go to columns), pruned."""
    rest = copy.deepcopy(element)
    for path in paths:
        parent = get_path(rest, path[:-1]) if len(path) > 1 else rest
        if isinstance(parent, dict):
            parent.pop(str(path[-1]), None)
    rest = _prune(rest)
    return None if _empty(rest) else rest


def _put(tree: Any, path: Path, value: Any) -> Any:
    """`tree` with `value` at `path`, creating objects and first list items as needed."""
    head, rest = path[0], path[1:]
    if isinstance(head, int):
        items = list(tree) if isinstance(tree, list) else []
        while len(items) <= head:
            items.append({})
        items[head] = _put(items[head], rest, value) if rest else value
        return items
    node = dict(tree) if isinstance(tree, dict) else {}
    node[head] = _put(node.get(head), rest, value) if rest else value
    return node


def overlay(rest: Any, assignments: list[tuple[Path, Any]]) -> Any:
    """The kept rest of an element with the column values put back (None: left out)."""
    tree = copy.deepcopy(rest) if rest is not None else {}
    for path, value in assignments:
        if value is not None:
            tree = _put(tree, path, value)
    tree = _drop_placeholders(tree)
    return None if _empty(tree) else tree


def _drop_placeholders(tree: Any) -> Any:
    if isinstance(tree, dict):
        return {key: _drop_placeholders(item) for key, item in tree.items()}
    if isinstance(tree, list):
        return [_drop_placeholders(item) for item in tree if not _empty(item)]
    return tree


# --- value[x] --------------------------------------------------------------------------

QUANTITY_PATHS: dict[str, Path] = {
    "val_numeric": ("value",),
    "operator": ("comparator",),
    "data_unit": ("unit",),
    "unit_system": ("system",),
    "unit_code": ("code",),
}


def value_element(body: dict[str, Any]) -> str | None:
    """The one value[x] element sent (None when there is none); other types are refused."""
    sent = [name for name in body if name.startswith("value") and body[name] is not None]
    unsupported = [name for name in sent if name not in VALUE_ELEMENTS]
    if unsupported:
        raise Invalid(
            f"{unsupported[0]} is not supported: send valueQuantity, valueString or "
            "valueCodeableConcept",
            expression=[unsupported[0]],
        )
    if len(sent) > 1:
        raise Invalid("At most one value[x] may be sent", expression=sent)
    return sent[0] if sent else None


def value_columns(table: Any, body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(column values, elements kept in extra_json) for the value[x] and referenceRange."""
    columns: dict[str, Any] = {name: None for name in (*QUANTITY_PATHS, "val_text")}
    columns.update(value_kind=None, value_code_system=None, value_code=None)
    extra: dict[str, Any] = {}
    name = value_element(body)
    if name == "valueQuantity":
        columns.update(_quantity_columns(table, body[name], name))
        extra["valueQuantity"] = split(body[name], list(QUANTITY_PATHS.values()))
    elif name == "valueString":
        columns["val_text"] = fit(table.c.val_text, body[name], name)
    elif name == "valueCodeableConcept":
        columns.update(_concept_columns(table, body[name], name))
        extra["valueCodeableConcept"] = split(body[name], _concept_paths(body[name]))
        if get_path(body[name], ("coding", 0, "display")) is None and body[name].get("text"):
            extra["valueLabel"] = "text"  # val_text came from text, not from a display
    if name:
        columns["value_kind"] = KIND_OF_ELEMENT[name]
    bounds, extra["referenceRange"] = _range_columns(body, columns)
    columns.update(bounds)
    return columns, extra


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


def _concept_paths(concept: dict[str, Any]) -> list[Path]:
    """The members of a CodeableConcept that go to columns (display, else text)."""
    paths: list[Path] = [("coding", 0, "system"), ("coding", 0, "code")]
    if get_path(concept, ("coding", 0, "display")) is not None:
        return [*paths, ("coding", 0, "display")]
    return [*paths, ("text",)]


def _concept_columns(table: Any, concept: dict[str, Any], field: str) -> dict[str, Any]:
    label = get_path(concept, ("coding", 0, "display")) or concept.get("text")
    return {
        "value_code_system": fit(
            table.c.value_code_system, get_path(concept, ("coding", 0, "system")), field
        ),
        "value_code": fit(table.c.value_code, get_path(concept, ("coding", 0, "code")), field),
        "val_text": fit(table.c.val_text, label, field),
    }


def _range_columns(body: dict[str, Any], value: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """referenceRange[0].low/high values -> bounds; their units must be the value's."""
    ranges = body.get("referenceRange") or []
    bounds: dict[str, float | None] = {"lower_bound": None, "upper_bound": None}
    for end, column in (("low", "lower_bound"), ("high", "upper_bound")):
        quantity = get_path(ranges, (0, end))
        if quantity is None:
            continue
        field = f"referenceRange[0].{end}"
        unit = quantity.get("unit")
        if unit is not None and unit != value["data_unit"]:
            raise Invalid(
                f"{field}.unit must be the unit of valueQuantity ({value['data_unit']})",
                expression=[f"{field}.unit"],
            )
        bounds[column] = number(quantity.get("value"), f"{field}.value")
    if not ranges:
        return bounds, None
    paths: list[Path] = []
    for end in ("low", "high"):
        paths += [(0, end, member) for member in ("value", "unit", "system", "code")]
    return bounds, split(ranges, paths)


def value_answer(row: Any, extra: dict[str, Any]) -> dict[str, Any]:
    """value[x] and referenceRange as answered: the kept rest plus the columns."""
    answer: dict[str, Any] = {}
    kind = row["value_kind"] or _guess_kind(row)
    if kind == "quantity":
        assignments = [(path, row[column]) for column, path in QUANTITY_PATHS.items()]
        assignments[0] = (("value",), decimal_out(row["val_numeric"]))
        answer["valueQuantity"] = overlay(extra.get("valueQuantity"), assignments)
    elif kind == "string" and row["val_text"] is not None:
        answer["valueString"] = row["val_text"]
    elif kind == "codeable":
        answer["valueCodeableConcept"] = _concept_answer(row, extra)
    ranges = _range_answer(row, extra.get("referenceRange"))
    if ranges:
        answer["referenceRange"] = ranges
    return {name: value for name, value in answer.items() if value is not None}


def _guess_kind(row: Any) -> str | None:
    """Rows loaded by other means than the API may lack value_kind."""
    if row["val_numeric"] is not None:
        return "quantity"
    if row["value_code"] is not None:
        return "codeable"
    return "string" if row["val_text"] is not None else None


def _concept_answer(row: Any, extra: dict[str, Any]) -> Any:
    coded = row["value_code"] is not None or row["value_code_system"] is not None
    in_text = not coded or extra.get("valueLabel") == "text"
    label_path: Path = ("text",) if in_text else ("coding", 0, "display")
    rest = extra.get("valueCodeableConcept")
    return overlay(
        rest,
        [
            (("coding", 0, "system"), row["value_code_system"]),
            (("coding", 0, "code"), row["value_code"]),
            (label_path, row["val_text"]),
        ],
    )


def _range_answer(row: Any, rest: Any) -> Any:
    assignments: list[tuple[Path, Any]] = []
    for end, column in (("low", "lower_bound"), ("high", "upper_bound")):
        if row[column] is None:
            continue
        assignments += [
            ((0, end, "value"), decimal_out(row[column])),
            ((0, end, "unit"), row["data_unit"]),
            ((0, end, "system"), row["unit_system"]),
            ((0, end, "code"), row["unit_code"]),
        ]
    return overlay(rest or [], assignments) if assignments or rest else None


# --- elements kept as sent -------------------------------------------------------------


def kept_elements(body: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """The elements with no column, kept as sent."""
    return {name: body[name] for name in names if body.get(name) is not None}


def extra_of(row: Any) -> dict[str, Any]:
    try:
        extra = load_extra(row["extra_json"])
    except ValueError:
        return {}
    return extra if isinstance(extra, dict) else {}


# --- codes bound to a thesaurus --------------------------------------------------------


def code_rest(concept: Any, thesaurus_url: str) -> dict[str, Any] | None:
    """What a bound code carries beyond the thesaurus coding: codings of other systems
    (LOINC, a local lab system...) and the text, kept to be answered after the concept."""
    if not isinstance(concept, dict):
        return None
    kept = []
    for position, coding in enumerate(concept.get("coding") or []):
        system = coding.get("system") if isinstance(coding, dict) else None
        if system == thesaurus_url or (position == 0 and not system):
            continue
        kept.append(coding)
    rest: dict[str, Any] = {"coding": kept} if kept else {}
    if concept.get("text"):
        rest["text"] = concept["text"]
    return rest or None


def code_answer(thesaurus_concept: dict[str, Any], rest: Any) -> dict[str, Any]:
    """The thesaurus coding first, then the kept codings and text."""
    answer = copy.deepcopy(thesaurus_concept)
    if isinstance(rest, dict):
        answer["coding"] += rest.get("coding") or []
        if rest.get("text"):
            answer["text"] = rest["text"]
    return answer
