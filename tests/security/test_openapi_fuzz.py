"""Bounded fuzz runs: no 5xx, ever, and a refused request changes nothing.

First schemathesis against the server's own OpenAPI schema (driven through its strategy
API: its pytest plugin crashes here): each documented operation gets a few generated
requests. Then FHIR-aware mutations of the documented valid bodies (below). Each run stays
well under a minute per backend.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from sqlalchemy import func, select

from codoc_fhir.app import create_app
from codoc_fhir.warehouse.schema import metadata
from tests.clients.payloads import patient_body, procedure_body
from tests.conftest import make_settings
from tests.factories import BOOKKEEPING, seed_procedure_context
from tests.fhir_client import FhirTestClient
from tests.resources.test_condition import SYNTHEA
from tests.resources.test_diagnostic_report import DOC_REPORT
from tests.resources.test_medication_request import DOC_PRESCRIPTION

BASE = "/v4.3.0"

EXAMPLES_PER_OPERATION = 4


def _server_errors(operation) -> list[str]:
    errors: list[str] = []

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def run(case) -> None:
        response = case.call()
        if response.status_code >= 500:
            errors.append(f"{case.method} {case.formatted_path} -> {response.status_code}")

    run()
    return errors


def test_no_server_error_on_any_operation(make_client, database_url, engine):
    seed_procedure_context(engine)
    schema = schemathesis.openapi.from_asgi(
        "/openapi.json", create_app(make_settings(database_url))
    )
    operations = [result.ok() for result in schema.get_all_operations()]
    assert any("/procedure/" in operation.path for operation in operations)
    errors = [error for operation in operations for error in _server_errors(operation)]
    assert errors == []


# --- FHIR-aware mutations of valid bodies ---------------------------------------------------
#
# Each documented valid payload is mutated, deterministically (fixed seed), at paths chosen
# among all of its elements: a value of another JSON type, the element deleted or null, a
# huge string, nested garbage, an array where an object was and the reverse, a bad
# resourceType. Every mutant is sent as a create, a PUT and a PATCH of an existing
# resource, and inside batch and transaction Bundles (about 1,500 requests). No answer may
# be a 5xx, and a refused request (a 4xx, or a batch whose entries were all refused) must
# leave every table as it was.

SEED = 20240115
RANDOM_MUTANTS = 12
OTHER_TYPES: list[Any] = [True, 7, 2.5, "fuzz", [], {}, [1, "a"], {"x": 1}]
BAD_RESOURCE_TYPES: list[Any] = ["Foo", "", "patient", 1, None]
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
HUGE = "\u00e9" * 200_000


def documented_payloads() -> dict[str, dict[str, Any]]:
    """One valid body per resource type, as the guides and resource pages document them,
    pointed at the seed context (Patient/1, Encounter/1, Organization/department-1)."""
    on_seed = {"encounter": {"reference": "Encounter/1"}}
    department = {"reference": "Organization/department-1"}
    return {
        "Patient": {"resourceType": "Patient", **patient_body("IPP-FUZZ")},
        "Procedure": {"resourceType": "Procedure", **procedure_body("1")},
        "Observation": {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"code": "GLU", "display": "Glucose"}]},
            "subject": {"reference": "Patient/1"},
            "category": [{"coding": [{"system": CATEGORY, "code": "laboratory"}]}],
            "effectiveDateTime": "2024-01-21T07:00:00Z",
            "valueQuantity": {"value": 5.4, "unit": "mmol/L"},
        },
        "DocumentReference": {
            "resourceType": "DocumentReference",
            "status": "current",
            "subject": {"reference": "Patient/1"},
            "date": "2024-01-15T10:00:00Z",
            "author": [{"display": "Dr. Smith"}],
            "content": [{"attachment": {"contentType": "text/html", "data": "PHA+Tm90ZTwvcD4="}}],
            "context": {"encounter": [{"reference": "Encounter/1"}]},
        },
        "Encounter": {
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"code": "IMP"},
            "subject": {"reference": "Patient/1"},
            "period": {"start": "2024-01-14T08:00:00Z", "end": "2024-01-20T11:00:00Z"},
        },
        "Organization": {
            "resourceType": "Organization",
            "identifier": [{"use": "usual", "value": "FUZZ-UNIT"}],
            "name": "Fuzz unit",
            "type": [{"coding": [{"code": "team"}]}],
            "partOf": department,
        },
        "MedicationRequest": DOC_PRESCRIPTION | on_seed | {"performer": department},
        "DiagnosticReport": DOC_REPORT | on_seed | {"performer": [department]},
        "Condition": SYNTHEA | on_seed,
    }


def element_paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path below the root: keys of objects, indexes of arrays."""
    children = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    paths = []
    for key, child in children:
        paths.append((*prefix, key))
        paths += element_paths(child, (*prefix, key))
    return paths


def _set(body: Any, path: tuple, change: Any) -> Any:
    """A copy of `body` where `change(old value)` replaces the value at `path` (the
    element is removed when `change` returns the REMOVE marker)."""
    body = copy.deepcopy(body)
    parent = body
    for part in path[:-1]:
        parent = parent[part]
    new = change(parent[path[-1]])
    if new is REMOVE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = new
    return body


REMOVE = object()


def _garbage(depth: int = 40) -> Any:
    value: Any = "leaf"
    for level in range(depth):
        value = {"g": value, "n": level} if level % 2 else [value, None, level]
    return value


def _other_type(rng: random.Random, old: Any) -> Any:
    return rng.choice([value for value in OTHER_TYPES if type(value) is not type(old)])


def _flip_container(old: Any) -> Any:
    if isinstance(old, list):
        return old[0] if old else {}
    return [old]


def mutate(
    rng: random.Random, body: dict[str, Any], operation: str, path: tuple | None = None
) -> tuple[str, Any]:
    """(what was done, the mutant) for one operation at `path` (a random element if None)."""
    if operation == "resource-type":
        value = rng.choice(BAD_RESOURCE_TYPES)
        mutant = copy.deepcopy(body)
        if value is None:
            del mutant["resourceType"]
        else:
            mutant["resourceType"] = value
        return f"resourceType={value!r}", mutant
    if path is None:
        path = rng.choice([path for path in element_paths(body) if path != ("resourceType",)])
    changes: dict[str, Callable[[Any], Any]] = {
        "wrong-type": lambda old: _other_type(rng, old),
        "delete": lambda old: REMOVE,
        "null": lambda old: None,
        "huge-string": lambda old: HUGE,
        "garbage": lambda old: _garbage(),
        "array-vs-object": _flip_container,
    }
    return f"{operation} at {'.'.join(map(str, path))}", _set(body, path, changes[operation])


OPERATIONS = ["wrong-type", "delete", "null", "huge-string", "garbage", "array-vs-object"]


def mutants(rng: random.Random, body: dict[str, Any]) -> list[tuple[str, Any]]:
    """A value of another JSON type at every element, each bad resourceType, every other
    operation once at a random element, then RANDOM_MUTANTS random operations."""
    paths = [path for path in element_paths(body) if path != ("resourceType",)]
    found = [mutate(rng, body, "wrong-type", path) for path in paths]
    found += [mutate(rng, body, "resource-type") for _ in BAD_RESOURCE_TYPES]
    found += [mutate(rng, body, operation) for operation in OPERATIONS]
    found += [mutate(rng, body, rng.choice(OPERATIONS)) for _ in range(RANDOM_MUTANTS)]
    return found


def row_counter(engine) -> Callable[[], tuple[int, ...]]:
    """All tables' row counts (but the access log and rate limits) in one statement."""
    tables = [table for table in metadata.sorted_tables if table.name not in BOOKKEEPING]
    query = select(*[select(func.count()).select_from(t).scalar_subquery() for t in tables])

    def counts() -> tuple[int, ...]:
        with engine.connect() as conn:
            return tuple(conn.execute(query).one())

    return counts


def _requests(fhir_type: str, ident: str, mutant: Any) -> list[tuple[str, str, str, Any]]:
    """(channel, method, path, body) for one mutant."""
    with_id = dict(mutant, id=ident) if isinstance(mutant, dict) else mutant
    item = f"{BASE}/{fhir_type}/{ident}"
    entry_post = {"resource": mutant, "request": {"method": "POST", "url": fhir_type}}
    entry_put = {"resource": with_id, "request": {"method": "PUT", "url": f"{fhir_type}/{ident}"}}
    batch = {"resourceType": "Bundle", "type": "batch", "entry": [entry_post, entry_put]}
    transaction = {"resourceType": "Bundle", "type": "transaction", "entry": [entry_post]}
    return [
        ("create", "POST", f"{BASE}/{fhir_type}", mutant),
        ("update", "PUT", item, with_id),
        ("patch", "PATCH", item, mutant),
        ("batch", "POST", f"{BASE}/", batch),
        ("transaction", "POST", f"{BASE}/", transaction),
    ]


def _refused(status: int, answer: Any) -> bool:
    """A 4xx, or a batch answer whose every entry is a 4xx."""
    if 400 <= status < 500:
        return True
    entries = answer.get("entry") if isinstance(answer, dict) else None
    if status != 200 or answer.get("type") != "batch-response" or not entries:
        return False
    return all(entry["response"]["status"].startswith("4") for entry in entries)


def test_mutated_fhir_bodies_never_5xx_and_refusals_change_nothing(client, app, engine):
    """`client` empties the tables; the fuzzing client answers a server error as a 500
    (it would otherwise raise it) so that every failure is listed."""
    seed_procedure_context(engine)
    client = FhirTestClient(app, raise_server_exceptions=False)
    payloads = documented_payloads()
    targets = {}
    for fhir_type, body in payloads.items():
        created = client.post(f"{BASE}/{fhir_type}", json=body)
        assert created.status_code == 201, (fhir_type, created.text)
        targets[fhir_type] = created.json()["id"]
    rng = random.Random(SEED)
    counts = row_counter(engine)
    problems: list[str] = []
    sent, before = 0, counts()
    for fhir_type, body in payloads.items():
        for label, mutant in mutants(rng, body):
            for channel, method, path, request_body in _requests(
                fhir_type, targets[fhir_type], mutant
            ):
                response = client.request(method, path, json=request_body)
                sent += 1
                after = counts()
                what = f"{fhir_type} {label} via {channel}: {response.status_code}"
                if response.status_code >= 500:
                    problems.append(what)
                elif _refused(response.status_code, response.json()) and after != before:
                    problems.append(f"{what} changed rows")
                before = after
    assert sent > 1000
    assert not problems, f"{len(problems)} of {sent} requests failed:\n" + "\n".join(problems)
