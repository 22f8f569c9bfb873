"""Building the research tests' data through the API: a thesaurus, patients, documents."""

from __future__ import annotations

import base64
import json
from pathlib import Path

BASE = "/v4.3.0"
THESAURUS = json.loads((Path(__file__).parent / "thesaurus.json").read_text())


def create_thesaurus(client, code: str = "Phenotypes", language: str = "french") -> None:
    """The corpus thesaurus (16 concepts), labelled in `language`."""
    body = {"resourceType": "CodeSystem", "url": f"urn:codoc:fhir:codesystem:{code}",
            "identifier": [{"value": code}], "name": code, "title": f"{code} thesaurus",
            "status": "active", "content": "complete"}  # fmt: skip
    assert client.post(f"{BASE}/codesystem/", json=body).status_code == 201, code
    concepts = [{"code": row["code"], "display": row[language]} for row in THESAURUS]
    answer = client.post(f"{BASE}/codesystem/{code}/concept/", json={"concept": concepts})
    assert answer.status_code == 200, answer.text


def create_patient(client, family: str = "Martin") -> str:
    body = {"resourceType": "Patient", "identifier": [{"value": f"IPP-{family}"}],
            "name": [{"family": family}], "gender": "female",
            "birthDate": "1970-01-01"}  # fmt: skip
    answer = client.post(f"{BASE}/patient/", json=body)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def document_body(patient: str, text: str, date: str = "2024-03-01T10:00:00Z") -> dict:
    data = base64.b64encode(text.encode()).decode()
    return {"resourceType": "DocumentReference", "status": "current",
            "subject": {"reference": f"Patient/{patient}"}, "date": date,
            "content": [{"attachment": {"contentType": "text/plain", "data": data}}]}  # fmt: skip


def create_document(client, patient: str, text: str, date: str = "2024-03-01T10:00:00Z") -> str:
    answer = client.post(f"{BASE}/documentreference/", json=document_body(patient, text, date))
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def components(observation: dict) -> dict:
    """component[] as {code: value}."""
    found = {}
    for item in observation.get("component", []):
        code = item["code"]["coding"][0]["code"]
        value = next(item[key] for key in item if key.startswith("value"))
        found[code] = value["value"] if isinstance(value, dict) else value
    return found


def qualified(observation: dict) -> tuple[str, bool, bool, bool]:
    """(concept code, negation, hypothesis, family) of a phenotype Observation."""
    parts = components(observation)
    code = observation["code"]["coding"][0]["code"]
    return code, parts["negation"], parts["hypothesis"], parts["family"]
