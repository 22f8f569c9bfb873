"""Build src/codoc_fhir/fhir/data/r4b_search_parameters.json from the official R4B package.

Usage (the package is the npm one, hl7.fhir.r4b.core 4.3.0)::

    cd /tmp && npm pack hl7.fhir.r4b.core@4.3.0
    mkdir r4b && tar xzf hl7.fhir.r4b.core-4.3.0.tgz -C r4b
    python scripts/extract_search_parameters.py /tmp/r4b/package

The data file holds, per resource type: every search parameter the specification defines
on it (code -> type, the FHIRPath expression restricted to that type, reference targets),
and the parameters that put a resource of that type in a patient's compartment (from
CompartmentDefinition-patient). Composite and special parameters are left out: the server
does not search on them (a search naming one answers 400, like any unknown parameter).
Parameters defined on Resource or DomainResource (`_id`, `_lastUpdated`, `_tag`...) are
left out too: the server declares the ones it supports itself.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

SUPPORTED_TYPES = ("token", "reference", "date", "string", "uri", "quantity", "number")
OUTPUT = Path(__file__).resolve().parents[1] / "src/codoc_fhir/fhir/data/r4b_search_parameters.json"


def split_union(expression: str) -> list[str]:
    """The top-level `|` alternatives of a FHIRPath expression (not those in parentheses)."""
    parts, depth, current = [], 0, ""
    for char in expression:
        depth += char == "("
        depth -= char == ")"
        if char == "|" and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    parts.append(current.strip())
    return [part for part in parts if part]


def root_type(part: str) -> str:
    """The type an alternative starts from: `Claim` for `(Claim.item.net as Money)`."""
    return part.lstrip("(").split(".", 1)[0].split(" ", 1)[0]


def for_type(expression: str, type_name: str) -> str:
    """The alternatives of `expression` that apply to `type_name`, joined again."""
    return " | ".join(part for part in split_union(expression) if root_type(part) == type_name)


def resource_types(package: Path) -> list[str]:
    names = []
    for path in sorted(package.glob("StructureDefinition-*.json")):
        definition = json.loads(path.read_text())
        concrete = definition.get("kind") == "resource" and not definition.get("abstract")
        if concrete and definition.get("derivation") == "specialization":
            names.append(definition["type"])
    return sorted(names)


def search_parameters(package: Path, types: list[str]) -> dict[str, dict[str, Any]]:
    by_type: dict[str, dict[str, Any]] = {name: {} for name in types}
    for path in sorted(package.glob("SearchParameter-*.json")):
        definition = json.loads(path.read_text())
        if definition.get("type") not in SUPPORTED_TYPES or not definition.get("expression"):
            continue
        for base in definition.get("base", []):
            if base not in by_type:
                continue  # Resource, DomainResource
            expression = for_type(definition["expression"], base)
            if not expression:
                continue
            param: dict[str, Any] = {"type": definition["type"], "expression": expression}
            if definition.get("target"):
                param["target"] = sorted(definition["target"])
            by_type[base][definition["code"]] = param
    return {name: dict(sorted(params.items())) for name, params in by_type.items()}


def patient_compartment(package: Path) -> dict[str, list[str]]:
    definition = json.loads((package / "CompartmentDefinition-patient.json").read_text())
    return {
        item["code"]: sorted(item["param"]) for item in definition["resource"] if item.get("param")
    }


def main(package: Path) -> None:
    types = resource_types(package)
    data = {
        "source": "hl7.fhir.r4b.core 4.3.0",
        "resource_types": types,
        "search_parameters": search_parameters(package, types),
        "patient_compartment": patient_compartment(package),
    }
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    print(f"{OUTPUT}: {len(types)} types")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/r4b/package"))
