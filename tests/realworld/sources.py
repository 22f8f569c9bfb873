"""The real-world data sources, each as transaction Bundles and as NDJSON resources.

A source is the same data in the two shapes other systems export: transaction Bundles
(entries with fullUrls, references between entries by fullUrl) and Bulk Data NDJSON
(resources with ids, references `Type/id`). Everything is made offline and the same on
every run.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from carebundle import generate_cohort, to_json, to_ndjson

from tests.realworld.synthea_style import synthea_bundles

FIXTURES = Path(__file__).parent / "fixtures" / "r4b"
EXAMPLE_BASE = "http://hl7.org/fhir"


@dataclass(frozen=True)
class Source:
    """One data set: the Bundles to post and the NDJSON resources to import."""

    name: str
    bundles: list[dict[str, Any]]
    ndjson: list[dict[str, Any]]


def carebundle_source() -> Source:
    """carebundle's own output: its transaction Bundles and its NDJSON export."""
    cohort = generate_cohort(count=2, seed=11)
    bundles = [json.loads(to_json(bundle)) for bundle in cohort]
    lines = [line for text in to_ndjson(cohort).values() for line in text.splitlines()]
    return Source("carebundle", bundles, [json.loads(line) for line in lines if line])


def synthea_source() -> Source:
    """The Synthea-style Bundles, and their NDJSON as Synthea's bulk export writes it (the
    uuid of the fullUrl as id, references `Type/<uuid>`)."""
    bundles = synthea_bundles(count=2)
    return Source("synthea", bundles, [*_as_ndjson(bundles)])


def r4b_examples_source() -> Source:
    """The official examples of tests/realworld/fixtures/r4b and the prerequisite patients
    they name but the package has not (see its README): one transaction whose fullUrls are
    the examples' canonical URLs, so that their relative references (`Patient/example`)
    name entries of the Bundle."""
    resources = [*_prerequisites(), *_examples()]
    entries = [
        {
            "fullUrl": f"{EXAMPLE_BASE}/{resource['resourceType']}/{resource['id']}",
            "resource": resource,
            "request": {"method": "POST", "url": resource["resourceType"]},
        }
        for resource in resources
    ]
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    return Source("r4b-examples", [bundle], resources)


SOURCES: dict[str, Callable[[], Source]] = {
    "carebundle": carebundle_source,
    "synthea": synthea_source,
    "r4b-examples": r4b_examples_source,
}


def _examples() -> list[dict[str, Any]]:
    return [json.loads(path.read_text()) for path in sorted(FIXTURES.glob("*.json"))]


def _prerequisites() -> list[dict[str, Any]]:
    """Patients the examples reference whose example file is missing or unusable."""
    return [
        {
            "resourceType": "Patient",
            "id": ident,
            "identifier": [{"system": "urn:oid:0.1.2.3.4.5.6.7", "value": f"PREREQ-{ident}"}],
            "gender": "unknown",
            "birthDate": "1950",
        }
        for ident in ("1", "pat1")
    ]


def _as_ndjson(bundles: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Bundle entries as NDJSON resources: `urn:uuid:X` fullUrls become ids X."""
    types = {
        entry["fullUrl"]: entry["resource"]["resourceType"]
        for bundle in bundles
        for entry in bundle["entry"]
    }
    resources = []
    for bundle in bundles:
        for entry in bundle["entry"]:
            resource = _rewrite(entry["resource"], types)
            resources.append(
                {
                    "resourceType": resource.pop("resourceType"),
                    "id": entry["fullUrl"].removeprefix("urn:uuid:"),
                    **resource,
                }
            )
    return resources


def _rewrite(value: Any, types: dict[str, str]) -> Any:
    if isinstance(value, dict):
        copy = {key: _rewrite(item, types) for key, item in value.items()}
        reference = copy.get("reference")
        if isinstance(reference, str) and reference in types:
            copy["reference"] = f"{types[reference]}/{reference.removeprefix('urn:uuid:')}"
        return copy
    if isinstance(value, list):
        return [_rewrite(item, types) for item in value]
    return value
