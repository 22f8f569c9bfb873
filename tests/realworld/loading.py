"""Loading a source through one of the two paths, and the checks a user makes after.

The two paths are the ones hospitals use: a transaction Bundle posted to the base URL, and
`codoc-fhir import` of NDJSON files. Either way the result is a `Run`: the resources as
sent, the key each one was known by in the source (its fullUrl, or `Type/id`), and the
map `ids` from those keys to the ids the server assigned. Each check returns the list of
its problems, so that one assertion prints all of them.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from codoc_fhir import cli
from codoc_fhir.warehouse.schema import fhir_import_id_map
from tests.fhir_client import FhirTestClient
from tests.realworld.compare import canonical_reference, differences
from tests.realworld.sources import Source

BASE = "/v4.3.0"
LOCATION = re.compile(r"([A-Z][A-Za-z]+/[^/]+)(?:/_history/.*)?$")
# The search parameter on a source coding, per type: (parameter, element).
CODE_SEARCHES = {
    "Observation": ("code", "code"),
    "Condition": ("code", "code"),
    "Procedure": ("code", "code"),
    "DiagnosticReport": ("code", "code"),
    "AllergyIntolerance": ("code", "code"),
    "MedicationRequest": ("code", "medicationCodeableConcept"),
    "Immunization": ("vaccine-code", "vaccineCode"),
}
# The elements that put a resource in a Patient's compartment (R4B CompartmentDefinition
# `patient`, its search parameters spelt as the elements they search).
COMPARTMENT = {
    "AllergyIntolerance": ("patient", "recorder", "asserter"),
    "Claim": ("patient", "payee.party"),
    "Condition": ("subject", "asserter"),
    "Coverage": ("policyHolder", "subscriber", "beneficiary", "payor"),
    "DiagnosticReport": ("subject",),
    "DocumentReference": ("subject", "author"),
    "Encounter": ("subject",),
    "Immunization": ("patient",),
    "MedicationRequest": ("subject",),
    "Observation": ("subject", "performer"),
    "Procedure": ("subject", "performer.actor"),
    "RelatedPerson": ("patient",),
}


@dataclass
class Run:
    """What one load sent, and what the server made of it."""

    source: str
    path: str
    sent: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (key, resource)
    ids: dict[str, str] = field(default_factory=dict)  # source key -> "Type/our-id"
    failures: list[str] = field(default_factory=list)  # what the load itself reported


def load_by_transaction(client: FhirTestClient, source: Source) -> Run:
    """POST every Bundle of the source to the base URL, as one transaction each."""
    run = Run(source.name, "transaction")
    for number, bundle in enumerate(source.bundles):
        run.sent += [(entry["fullUrl"], entry["resource"]) for entry in bundle["entry"]]
        try:
            response = client.post(f"{BASE}/", json=bundle)
        except Exception as error:  # an answer that is not valid R4B
            run.failures.append(f"Bundle {number}: answer not valid R4B: {error}"[:2000])
            continue
        if response.status_code != 200:
            run.failures.append(f"Bundle {number}: {response.status_code} {response.text[:1500]}")
            continue
        for entry, answer in zip(bundle["entry"], response.json()["entry"], strict=True):
            _remember(run, entry, answer["response"].get("location") or "")
    return run


def _remember(run: Run, entry: dict[str, Any], location: str) -> None:
    match = LOCATION.search(location)
    if match is None:
        run.failures.append(f"{entry['fullUrl']}: no location in the answer ({location!r})")
        return
    run.ids[entry["fullUrl"]] = match.group(1)
    resource = entry["resource"]
    if resource.get("id"):
        run.ids[f"{resource['resourceType']}/{resource['id']}"] = match.group(1)


def load_by_import(
    database_url: str, engine: Engine, folder: Path, source: Source, shuffle: bool = True
) -> Run:
    """`codoc-fhir import` of one NDJSON file per type, in an order that is not the
    dependency order: files by name (Patient and Organization after what references them),
    the lines of each file shuffled (unless `shuffle` is off: then in the source's order)."""
    run = Run(source.name, "import")
    by_type: dict[str, list[dict[str, Any]]] = {}
    for resource in source.ndjson:
        by_type.setdefault(resource["resourceType"], []).append(resource)
        run.sent.append((f"{resource['resourceType']}/{resource['id']}", resource))
    order = random.Random(20261202)
    files = []
    for kind in sorted(by_type):
        lines = [json.dumps(resource) + "\n" for resource in by_type[kind]]
        if shuffle:
            order.shuffle(lines)
        path = folder / f"{kind}.ndjson"
        path.write_text("".join(lines))
        files.append(str(path))
    errors = folder / "errors.ndjson"
    status = _import(
        ["--database-url", database_url, "--continue-on-error", "--errors", str(errors), *files]
    )
    if status != 0:
        run.failures.append(f"codoc-fhir import exited {status}")
    if errors.exists():
        run.failures += [_failure(line) for line in errors.read_text().splitlines()]
    run.ids = imported_ids(engine)
    return run


def _failure(line: str) -> str:
    """One line of the importer's --errors file, as `file:line Type/id: status diagnostics`."""
    try:
        failure = json.loads(line)
        issues = (failure.get("outcome") or {}).get("issue") or [{}]
        where = (
            f"{Path(str(failure.get('file'))).name}:{failure.get('line') or failure.get('entry')}"
        )
        what = f"{failure.get('resourceType')}/{failure.get('id')}"
        return f"{where} {what}: {failure.get('status')} {issues[0].get('diagnostics')}"[:1500]
    except (ValueError, AttributeError, IndexError):
        return line[:1500]


def _import(arguments: list[str]) -> int:
    try:
        cli.main(["import", "--quiet", *arguments])
    except SystemExit as stop:
        return int(stop.code or 0)
    return 0


def imported_ids(engine: Engine) -> dict[str, str]:
    """The importer's map, as `Type/source-id` -> `Type/our-id`."""
    columns = (
        fhir_import_id_map.c.source_type,
        fhir_import_id_map.c.source_id,
        fhir_import_id_map.c.target_id,
    )
    with engine.connect() as conn:
        rows = conn.execute(select(*columns)).all()
    ids = {}
    for kind, source_id, target in rows:
        ids[f"{kind}/{source_id}"] = f"{kind}/{target}"
        ids[f"urn:uuid:{source_id}"] = f"{kind}/{target}"
    return ids


def stored_counts(client: FhirTestClient, run: Run) -> list[str]:
    """Per type: how many were sent and how many a search counts."""
    sent = Counter(resource["resourceType"] for _key, resource in run.sent)
    problems = []
    for kind, expected in sorted(sent.items()):
        response = client.get(f"{BASE}/{kind}?_summary=count")
        if response.status_code != 200:
            problems.append(f"{kind}?_summary=count: {response.status_code} {response.text[:300]}")
        elif response.json().get("total") != expected:
            problems.append(f"{kind}: sent {expected}, stored {response.json().get('total')}")
    return problems


def round_trip(client: FhirTestClient, run: Run) -> list[str]:
    """Every resource read back and compared with what was sent."""
    problems = []
    for key, resource in run.sent:
        local = run.ids.get(key)
        if local is None:
            problems.append(f"{key}: not stored")
            continue
        try:
            response = client.get(f"{BASE}/{local}")
        except Exception as error:  # an answer that is not valid R4B
            problems.append(f"{key} as {local}: answer not valid R4B: {error}"[:1500])
            continue
        if response.status_code != 200:
            problems.append(f"{key} as {local}: read {response.status_code} {response.text[:300]}")
            continue
        found = differences(resource, response.json(), run.ids)
        problems += [f"{key} as {local}: {line}"[:1000] for line in found]
    return problems


def source_codings(run: Run) -> Counter[tuple[str, str, str, str]]:
    """(type, parameter, system, code) -> how many sent resources carry that coding."""
    counts: Counter[tuple[str, str, str, str]] = Counter()
    for _key, resource in run.sent:
        kind = resource["resourceType"]
        if kind not in CODE_SEARCHES:
            continue
        parameter, element = CODE_SEARCHES[kind]
        pairs = {
            (coding["system"], coding["code"])
            for coding in (resource.get(element) or {}).get("coding") or []
            if coding.get("system") and coding.get("code")
        }
        for system, code in pairs:
            counts[(kind, parameter, system, code)] += 1
    return counts


def token_searches(client: FhirTestClient, run: Run) -> list[str]:
    """Every source coding sent finds exactly the resources sent with it."""
    problems = []
    for (kind, parameter, system, code), expected in sorted(source_codings(run).items()):
        url = f"{BASE}/{kind}?{parameter}={system}|{code}&_summary=count"
        response = client.get(url)
        if response.status_code != 200:
            problems.append(f"{url}: {response.status_code} {response.text[:300]}")
        elif response.json().get("total") != expected:
            problems.append(f"{url}: sent {expected}, found {response.json().get('total')}")
    return problems


def references_at(resource: Any, dotted: str) -> Iterator[str]:
    """The reference strings found at the element path `dotted` (lists walked through)."""
    if isinstance(resource, list):
        for item in resource:
            yield from references_at(item, dotted)
        return
    if not isinstance(resource, dict):
        return
    if not dotted:
        if isinstance(resource.get("reference"), str):
            yield resource["reference"]
        return
    head, _, rest = dotted.partition(".")
    yield from references_at(resource.get(head), rest)


def compartment_members(run: Run, patient_key: str) -> list[str]:
    """The source keys of what was sent in the compartment of the patient sent as
    `patient_key` (the patient included)."""
    patient = run.ids.get(patient_key, patient_key)
    members = [patient_key]
    for key, resource in run.sent:
        elements = COMPARTMENT.get(resource["resourceType"], ())
        named = {
            canonical_reference(reference, run.ids)
            for element in elements
            for reference in references_at(resource, element)
        }
        if patient in named:
            members.append(key)
    return members


def everything(client: FhirTestClient, run: Run) -> list[str]:
    """Patient/{id}/$everything answers every member of the compartment that was sent."""
    problems = []
    patients = [key for key, resource in run.sent if resource["resourceType"] == "Patient"]
    assert patients, "the source has patients"
    for key in patients:
        members = compartment_members(run, key)
        unstored = [member for member in members if member not in run.ids]
        if unstored:
            problems.append(f"{key}: compartment members not stored: {unstored}")
        if key not in run.ids:
            continue
        answered, error = _everything_of(client, run.ids[key])
        if error:
            problems.append(f"{key}: {error}")
            continue
        missing = [run.ids[member] for member in members if member in run.ids]
        missing = [member for member in missing if member not in answered]
        if missing:
            problems.append(f"{key} as {run.ids[key]}: $everything lacks {sorted(missing)}")
    return problems


def _everything_of(client: FhirTestClient, patient: str) -> tuple[set[str], str | None]:
    url: str | None = f"{BASE}/{patient}/$everything?_count=200"
    answered: set[str] = set()
    while url:
        try:
            response = client.get(url)
        except Exception as error:  # an answer that is not valid R4B
            return answered, f"$everything answer not valid R4B: {error}"[:1500]
        if response.status_code != 200:
            return answered, f"$everything: {response.status_code} {response.text[:300]}"
        page = response.json()
        for entry in page.get("entry") or []:
            answered.add(f"{entry['resource']['resourceType']}/{entry['resource']['id']}")
        url = next(
            (link["url"] for link in page.get("link") or [] if link["relation"] == "next"), None
        )
    return answered, None
