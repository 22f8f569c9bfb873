"""The request-body reader's nesting limit, at its boundary."""

import orjson
import pytest

from codoc_fhir.fhir.errors import Invalid
from codoc_fhir.fhir.validation import MAX_JSON_DEPTH, parse_json_body


def nested_lists(depth: int) -> bytes:
    return b"[" * depth + b"1" + b"]" * depth


def nested_objects(depth: int) -> bytes:
    value: dict = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return orjson.dumps(value)


@pytest.mark.parametrize("nested", [nested_lists, nested_objects])
def test_bodies_nested_to_the_limit_are_read(nested):
    assert parse_json_body(nested(MAX_JSON_DEPTH)) is not None


@pytest.mark.parametrize("nested", [nested_lists, nested_objects])
def test_one_level_deeper_is_refused(nested):
    with pytest.raises(Invalid, match="nested deeper"):
        parse_json_body(nested(MAX_JSON_DEPTH + 1))


def test_depth_counts_the_deepest_branch_of_a_wide_body():
    wide = {"entry": [{"resource": {"id": str(index)}} for index in range(500)]}
    deep: object = 1
    for _ in range(MAX_JSON_DEPTH - 2):
        deep = [deep]
    wide["entry"].append(deep)
    assert parse_json_body(orjson.dumps(wide))["entry"][0]["resource"]["id"] == "0"
    wide["entry"].append([deep])
    with pytest.raises(Invalid, match="nested deeper"):
        parse_json_body(orjson.dumps(wide))
