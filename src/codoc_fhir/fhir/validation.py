"""Input validation: the body's shape, its JSON types, then the FHIR R4B model of
fhir.resources (see json_types for why the JSON types are checked apart)."""

from __future__ import annotations

import re
from typing import Any

import orjson
from pydantic import ValidationError

from codoc_fhir.fhir.errors import FhirError, Invalid, Required
from codoc_fhir.fhir.json_types import check_json_types, checked_ahead, model_class

MAX_JSON_DEPTH = 64


def parse_json_body(raw: bytes) -> Any:
    """Decode a request body, answering 400 for bad JSON or absurd nesting."""
    if not raw.strip():
        raise Invalid("The request body is empty")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise Invalid(f"Invalid JSON: {error.msg}") from None
    if b"\\u0000" in raw:
        raise Invalid("Strings must not contain NUL characters (\\u0000)")
    if _too_deep(data):
        raise Invalid(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    return data


def _too_deep(data: Any) -> bool:
    """Whether containers nest deeper than MAX_JSON_DEPTH, walked level by level over the
    containers only (a Bundle of 100 entries holds thousands of scalars not worth a call)."""
    level = 0
    current = [data] if isinstance(data, dict | list) else []
    while current:
        level += 1
        if level > MAX_JSON_DEPTH:
            return True
        deeper = []
        for container in current:
            items = container.values() if isinstance(container, dict) else container
            deeper += [item for item in items if isinstance(item, dict | list)]
        current = deeper
    return False


def _location(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _error_from_pydantic(error: ValidationError, resource_type: str) -> FhirError:
    first = error.errors()[0]
    where = _location(tuple(first.get("loc", ())))
    message = str(first.get("msg", "invalid value"))
    expression = [f"{resource_type}.{where}"] if where else [resource_type]
    if str(first.get("type", "")).endswith("missing"):
        return Required(f"Field '{where}' is required", expression=expression)
    if _is_date_error(str(first.get("type", "")), message):
        return Invalid(
            f"Invalid date format for {where}: {first.get('input')!r}", expression=expression
        )
    if first.get("type") == "extra_forbidden":
        return Invalid(f"Unknown element '{where}' in {resource_type}", expression=expression)
    message = message.removeprefix("Value error, ")
    return Invalid(f"Invalid value for {where}: {message}", expression=expression)


def _is_date_error(error_type: str, message: str) -> bool:
    """A malformed date, dateTime, instant or time value (pydantic's or fhir.resources')."""
    if error_type.startswith(("date", "time")):
        return True
    return bool(re.search(r"\b(Date|DateTime|Instant|Time) value string", message)) or (
        "valid date" in message
    )


def validate_resource(body: Any, resource_type: str) -> dict[str, Any]:
    """Check that `body` is a `resource_type` valid against the FHIR R4B model."""
    if not isinstance(body, dict):
        raise Invalid("The request body must be a JSON object")
    sent_type = body.get("resourceType")
    if sent_type is None:
        raise Required("Field 'resourceType' is required", expression=["resourceType"])
    if sent_type != resource_type:
        raise Invalid(
            f"resourceType must be {resource_type}, got {sent_type!r}",
            expression=["resourceType"],
        )
    if checked_ahead(body):
        return body
    check_json_types(body, resource_type)
    try:
        model_class(resource_type).model_validate(body)
    except ValidationError as error:
        raise _error_from_pydantic(error, resource_type) from None
    except (TypeError, ValueError, LookupError) as error:
        raise Invalid(f"Invalid {resource_type}: {error}") from None
    return body


def require(body: dict[str, Any], *path: str | int) -> Any:
    """The value at `path` in `body`, or a 400 `required` naming the field."""
    value: Any = body
    for part in path:
        if isinstance(part, int):
            value = value[part] if isinstance(value, list) and len(value) > part else None
        else:
            value = value.get(part) if isinstance(value, dict) else None
        if value is None or value == "" or value == [] or value == {}:
            name = _location(path)
            raise Required(f"Field '{name}' is required", expression=[name])
    return value


def check_code(value: Any, allowed: tuple[str, ...], field: str) -> str:
    """A code that must be one of `allowed` (fhir.resources does not check code values)."""
    if value not in allowed:
        raise Invalid(
            f"Invalid {field} {value!r}. Must be one of: {', '.join(allowed)}", expression=[field]
        )
    return str(value)


def check_length(value: Any, limit: int, field: str) -> Any:
    """`value` unchanged, or a 400 when it is a string too long for its warehouse column."""
    if isinstance(value, str) and len(value) > limit:
        raise Invalid(f"{field} is longer than {limit} characters", expression=[field])
    return value


def text_value(value: Any, field: str, max_length: int) -> str:
    """A string to store in a column of `max_length` characters (400 otherwise)."""
    if not isinstance(value, str):
        raise Invalid(f"{field} must be a string", expression=[field])
    if "\x00" in value:
        raise Invalid(f"{field} must not contain NUL characters", expression=[field])
    return str(check_length(value, max_length, field))
