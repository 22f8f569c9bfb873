"""The JSON type of every value of a body, checked against the FHIR R4B model's own fields.

fhir.resources validates with pydantic in lax mode: `"deceasedBoolean": "yes"` becomes true,
`"value": "5.4"` a decimal, `"family": 1` the string "1". FHIR JSON has no such leniency: a
boolean is `true`/`false`, a number is a JSON number, a string a JSON string. Pydantic's
strict mode cannot say so here (the models' custom `__init__` drops the flag for nested
elements, and strict mode refuses dates sent as strings, which is how FHIR JSON sends them).

So the expected JSON type of each element is read, once per model class, from the type
annotations fhir.resources generates (bool, int, Decimal, str/date/datetime/bytes..., a
nested element model, or a resource chosen by its `resourceType`), and a body is walked
along them. The walk also refuses an array where one value is expected and the reverse,
so that the code reading a body after this check meets the shapes FHIR defines. Values
the model does not declare (unknown elements) are left to the model check, which names them.
"""

from __future__ import annotations

import datetime
import decimal
import types
import typing
import uuid
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from fhir_core.types import FhirBase
from pydantic import AnyUrl

from codoc_fhir.fhir.errors import FhirError, Invalid, Required

# Python types of the annotations -> the JSON type FHIR sends them as.
JSON_TYPES: dict[Any, str] = {
    bool: "boolean",
    int: "integer",
    decimal.Decimal: "number",
    float: "number",
    str: "string",
    bytes: "string",
    datetime.date: "date",
    datetime.datetime: "date",
    datetime.time: "date",
    uuid.UUID: "string",
    AnyUrl: "string",
}
EXPECTED = {
    "boolean": "a JSON boolean (true or false)",
    "integer": "a JSON integer",
    "number": "a JSON number",
    "string": "a JSON string",
    "date": "a JSON string",
    "object": "a JSON object",
}
RESOURCE = "resource"  # a resource whose model its own `resourceType` names


@dataclass(frozen=True)
class Shape:
    """What one element holds: a JSON type (or an element model, or a resource), once or
    as an array."""

    json_type: str  # boolean | integer | number | string | object | resource
    many: bool = False
    model: Any = None  # the element model of an object


@lru_cache(maxsize=64)
def model_class(resource_type: str) -> Any:
    return get_fhir_model_class(resource_type)


# The body `TypesChecked` has just walked: the model check inside its block (a kind's
# validate, then validate_resource) does not walk it again.
_CHECKED: ContextVar[Any] = ContextVar("codoc_json_types_checked", default=None)
# The bodies `CheckedAhead` vouches for (by identity): they passed this check and the
# model's in another process.
_AHEAD: ContextVar[frozenset[int]] = ContextVar("codoc_checked_ahead", default=frozenset())


def check_json_types(body: Any, resource_type: str) -> None:
    """400 for the first value of `body` whose JSON type is not the one FHIR defines.

    Only a body of `resource_type` is walked: another resourceType is the model check's
    error to report.
    """
    if not isinstance(body, dict) or body.get("resourceType") != resource_type:
        return
    if _CHECKED.get() is body or checked_ahead(body):
        return
    try:
        _check_object(body, model_class(resource_type))
    except _Mismatch as mismatch:
        raise mismatch.error(resource_type) from None


class TypesChecked:
    """`check_json_types`, then a block in which checking this very body again is skipped
    (`Resource.checked`: the kind's own checks come between this walk and the model
    check's, and do not change the body; a kind that checks a copy has it walked). A class,
    not a generator: it runs for every body written, and a generator's context manager
    cost a fifth of the walk itself."""

    def __init__(self, body: Any, resource_type: str) -> None:
        check_json_types(body, resource_type)
        self.body = body

    def __enter__(self) -> None:
        self.token = _CHECKED.set(self.body)

    def __exit__(self, *_: object) -> None:
        _CHECKED.reset(self.token)


class CheckedAhead:
    """A block in which these very bodies (by identity, held alive by the block) count as
    having passed the JSON types and the R4B model check: `codoc-fhir import` runs both
    in another process on each line as read (bulk/ahead.py), and its batch then skips
    them; a body that failed there, or any other, is checked here as always.

    The line checked there differs from the body written only in the text of its
    references (rewritten to our ids: strings for strings), which neither check reads
    beyond its JSON type; a kind's own checks (`Resource.validate` overrides) still run."""

    def __init__(self, bodies: list[Any]) -> None:
        self.bodies = bodies
        self.identities = frozenset(id(body) for body in bodies)

    def __enter__(self) -> None:
        self.token = _AHEAD.set(self.identities)

    def __exit__(self, *_: object) -> None:
        _AHEAD.reset(self.token)


def checked_ahead(body: Any) -> bool:
    """Whether `body` passed both checks ahead (`CheckedAhead`)."""
    identities = _AHEAD.get()
    return bool(identities) and id(body) in identities


@cache
def shapes(model: Any) -> dict[str, Shape]:
    """The shape of each element of a model, by its JSON name (`_birthDate` included)."""
    found = {}
    for name, info in model.model_fields.items():
        shape = _shape(info.annotation)
        if shape is not None:
            found[info.alias or name] = shape
    return found


def _shape(annotation: Any) -> Shape | None:
    """The Shape an annotation describes; None for what this check does not follow."""
    kind = _without_none(annotation)
    many = typing.get_origin(kind) is list
    if many:
        kind = _without_none(typing.get_args(kind)[0])
    if typing.get_origin(kind) is typing.Annotated:
        kind = typing.get_args(kind)[0]
    if _is_union(kind):  # `url`: AnyUrl or str, both strings in JSON
        names = {JSON_TYPES.get(item, "") for item in typing.get_args(kind)}
        return Shape(names.pop(), many) if len(names) == 1 and "" not in names else None
    if isinstance(kind, type) and issubclass(kind, FhirBase):
        model = kind.get_model_klass()
        if getattr(model, "__resource_type__", None) in ("Resource", "DomainResource"):
            return Shape(RESOURCE, many)
        return Shape("object", many, model)
    json_type = JSON_TYPES.get(kind)
    return Shape(json_type, many) if json_type else None


def _is_union(kind: Any) -> bool:
    return typing.get_origin(kind) in (typing.Union, types.UnionType)


def _without_none(kind: Any) -> Any:
    if _is_union(kind):
        rest = [item for item in typing.get_args(kind) if item is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return kind


# The Python types (as orjson decodes JSON) each JSON type accepts: `type(x) in ...`, so
# that a bool (an int to Python) is never a FHIR integer or decimal.
ACCEPTED: dict[str, tuple[type, ...]] = {
    "boolean": (bool,),
    "integer": (int,),
    "number": (int, float),
    "string": (str,),
    "date": (str,),
}


class _Mismatch(Exception):
    """A value of the wrong JSON type; `path` grows (innermost first) while it unwinds, so
    that the walk builds no path text unless there is an error to report."""

    def __init__(self, expected: str, value: Any) -> None:
        super().__init__(expected)
        self.expected = expected
        self.value = value
        self.path: list[str | int] = []

    def error(self, resource_type: str) -> FhirError:
        where = ""
        for part in reversed(self.path):
            where += f"[{part}]" if isinstance(part, int) else (f".{part}" if where else part)
        expression = [f"{resource_type}.{where}"]
        if self.expected == "date":
            return Invalid(
                f"Invalid date format for {where}: {self.value!r}", expression=expression
            )
        if self.expected == "resourceType":
            return Invalid(f"Unknown resourceType {self.value!r} at {where}", expression=expression)
        if self.expected == "required":
            return Required(f"Field '{where}' is required", expression=expression)
        wanted = EXPECTED.get(self.expected, "a JSON array")
        return Invalid(
            f"Invalid value for {where}: expected {wanted}, got {_json_name(self.value)}",
            expression=expression,
        )


def _check_object(value: dict[str, Any], model: Any) -> None:
    known = shapes(model)
    for key, item in value.items():
        shape = known.get(key)
        if shape is None or item is None:
            continue
        try:
            if not shape.many:
                _check_value(item, shape)
                continue
            if type(item) is not list:
                raise _Mismatch("array", item)
            for index, element in enumerate(item):
                if element is not None:  # primitive arrays keep null placeholders
                    try:
                        _check_value(element, shape)
                    except _Mismatch as mismatch:
                        mismatch.path.append(index)
                        raise
        except _Mismatch as mismatch:
            mismatch.path.append(key)
            raise


def _check_value(value: Any, shape: Shape) -> None:
    kind = shape.json_type
    accepted = ACCEPTED.get(kind)
    if accepted is not None:
        if type(value) not in accepted:
            raise _Mismatch(kind, value)
        return
    if type(value) is not dict:
        raise _Mismatch("object", value)
    _check_object(value, shape.model if kind == "object" else _resource_model(value))


def _resource_model(value: dict[str, Any]) -> Any:
    """The model of an inline resource (Bundle entry, contained): its resourceType's."""
    name = value.get("resourceType")
    if name is None:
        mismatch = _Mismatch("required", None)
        mismatch.path.append("resourceType")
        raise mismatch
    if not isinstance(name, str) or not name.isalpha() or not name[:1].isupper():
        raise _Mismatch("resourceType", name)
    try:
        return model_class(name)
    except (LookupError, ValueError, ImportError):
        raise _Mismatch("resourceType", name) from None


def _json_name(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"
