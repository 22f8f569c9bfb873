"""The R4B search parameters and Patient compartment, as the data file built from the
official package holds them (scripts/extract_search_parameters.py), loaded once.

Types stored whole in `fhir_resource` are the R4B resource types the warehouse does not
map, minus `EXCLUDED`: resources that are messages of the API itself rather than records
(Parameters, OperationOutcome), and ValueSet, served from the thesauri (the implicit
all-codes ValueSet of each CodeSystem, `ValueSet/$expand`).
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

DATA_FILE = "r4b_search_parameters.json"
EXCLUDED = {
    "Parameters": "the input and output of operations, never a stored record",
    "OperationOutcome": "the outcome of a request, never a stored record",
    "ValueSet": "served from the thesauri: the all-codes ValueSet of each CodeSystem",
}
# Mapped on warehouse tables by another module (resources/condition.py), even when that
# module is not registered yet: never stored whole.
MAPPED_ELSEWHERE = frozenset({"Condition"})
# The compartment parameters naming the patient itself come first: a Claim belongs to its
# `patient`, even when its `payee` is another patient.
FIRST_COMPARTMENT_PARAMS = ("patient", "subject")


@dataclass(frozen=True)
class ParamDefinition:
    """One R4B search parameter of one type: its FHIRPath expression for that type."""

    code: str
    type: str  # token | reference | date | string | uri | quantity | number
    expression: str
    targets: tuple[str, ...] = ()


@dataclass(frozen=True)
class TypeDefinition:
    """A resource type's R4B search parameters and its Patient compartment parameters
    (empty: the type is outside the compartment)."""

    name: str
    params: dict[str, ParamDefinition] = field(default_factory=dict)
    compartment: tuple[str, ...] = ()


@cache
def _data() -> dict[str, Any]:
    text = resources.files("codoc_fhir.fhir").joinpath("data", DATA_FILE).read_text("utf-8")
    return dict(json.loads(text))


def _compartment_order(params: list[str]) -> tuple[str, ...]:
    first = [name for name in FIRST_COMPARTMENT_PARAMS if name in params]
    return (*first, *(name for name in params if name not in first))


def type_definition(name: str) -> TypeDefinition:
    data = _data()
    params = {
        code: ParamDefinition(
            code, spec["type"], spec["expression"], tuple(spec.get("target") or ())
        )
        for code, spec in data["search_parameters"].get(name, {}).items()
    }
    compartment = data["patient_compartment"].get(name, [])
    return TypeDefinition(name, params, _compartment_order(compartment))


def generic_type_names(served: Collection[str]) -> list[str]:
    """The R4B types stored whole: all but those `served` by warehouse mappings, those
    mapped elsewhere and the excluded ones."""
    skipped = set(served) | MAPPED_ELSEWHERE | set(EXCLUDED)
    return [name for name in _data()["resource_types"] if name not in skipped]
