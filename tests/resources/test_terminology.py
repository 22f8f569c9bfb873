"""Terminology over the thesauri: $lookup, $validate-code, ValueSet/$expand, designations."""

from __future__ import annotations

import pytest

BASE = "/v4.3.0"
URL = "urn:codoc:fhir:codesystem:ALLERGIES"
CODESYSTEM = {
    "resourceType": "CodeSystem",
    "url": URL,
    "name": "ALLERGIES",
    "title": "Allergies",
    "status": "active",
    "content": "complete",
    "concept": [
        {
            "code": "PEN",
            "display": "Allergie à la pénicilline",
            "designation": [
                {"language": "en", "value": "Penicillin allergy"},
                {"value": "Allergie aux bêta-lactamines"},
            ],
        },
        {"code": "ARA", "display": "Allergie à l'arachide", "definition": "Peanuts"},
        {"code": "LAT", "display": "Allergie au latex"},
    ],
}


def param(parameters: dict, name: str):
    found = [p for p in parameters["parameter"] if p["name"] == name]
    return found[0] if found else None


@pytest.fixture
def thesaurus(client):
    response = client.post(f"{BASE}/CodeSystem", json=CODESYSTEM)
    assert response.status_code == 201, response.text
    return response.json()


def test_designations_are_stored_and_answered(client, thesaurus):
    pen = next(item for item in thesaurus["concept"] if item["code"] == "PEN")
    assert pen["designation"][0] == {"language": "en", "value": "Penicillin allergy"}
    concept = client.get(f"{BASE}/codesystem/ALLERGIES/concept/PEN/").json()
    assert [item["value"] for item in concept["designation"]] == [
        "Penicillin allergy",
        "Allergie aux bêta-lactamines",
    ]
    patched = client.patch(
        f"{BASE}/codesystem/ALLERGIES/concept/LAT/",
        json={"designation": [{"value": "Latex sensitivity"}]},
    )
    assert patched.status_code == 200
    assert patched.json()["designation"] == [{"value": "Latex sensitivity"}]
    bad = client.patch(f"{BASE}/codesystem/ALLERGIES/concept/LAT/", json={"designation": [{}]})
    assert bad.status_code == 400


def test_lookup(client, thesaurus):
    for response in (
        client.get(f"{BASE}/CodeSystem/$lookup", params={"system": URL, "code": "PEN"}),
        client.post(
            f"{BASE}/codesystem/$lookup",
            json={
                "resourceType": "Parameters",
                "parameter": [
                    {"name": "system", "valueUri": URL},
                    {"name": "code", "valueCode": "PEN"},
                ],
            },
        ),
    ):
        assert response.status_code == 200, response.text
        answer = response.json()
        assert param(answer, "name")["valueString"] == "ALLERGIES"
        assert param(answer, "display")["valueString"] == "Allergie à la pénicilline"
        designation = param(answer, "designation")["part"]
        assert {"name": "value", "valueString": "Penicillin allergy"} in designation
    unknown = client.get(f"{BASE}/CodeSystem/$lookup", params={"system": URL, "code": "NOPE"})
    assert unknown.status_code == 404
    assert client.get(f"{BASE}/CodeSystem/$lookup", params={"code": "PEN"}).status_code == 400
    other = client.get(f"{BASE}/CodeSystem/$lookup", params={"system": "http://loinc.org"})
    assert other.status_code == 400


def test_validate_code(client, thesaurus):
    ok = client.get(f"{BASE}/CodeSystem/$validate-code", params={"url": URL, "code": "ARA"})
    assert param(ok.json(), "result")["valueBoolean"] is True
    assert param(ok.json(), "display")["valueString"] == "Allergie à l'arachide"
    missing = client.get(f"{BASE}/CodeSystem/$validate-code", params={"url": URL, "code": "X"})
    assert param(missing.json(), "result")["valueBoolean"] is False
    assert "not in CodeSystem" in param(missing.json(), "message")["valueString"]
    wrong = client.get(
        f"{BASE}/CodeSystem/$validate-code", params={"url": URL, "code": "ARA", "display": "Nuts"}
    )
    assert param(wrong.json(), "result")["valueBoolean"] is False
    synonym = client.get(
        f"{BASE}/CodeSystem/$validate-code",
        params={"url": URL, "code": "PEN", "display": "Penicillin allergy"},
    )
    assert param(synonym.json(), "result")["valueBoolean"] is True


def codes(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["code"] for item in response.json()["expansion"].get("contains", [])]


def test_expand_with_filter_count_and_offset(client, thesaurus):
    expand = f"{BASE}/ValueSet/$expand"
    everything = client.get(expand, params={"url": URL})
    assert everything.json()["expansion"]["total"] == 3
    assert codes(everything) == ["PEN", "ARA", "LAT"]  # in creation order
    assert codes(client.get(expand, params={"url": URL, "filter": "PENICILLINE"})) == ["PEN"]
    assert codes(client.get(expand, params={"url": URL, "filter": "beta lactamines"})) == ["PEN"]
    assert codes(client.get(expand, params={"url": URL, "filter": "allergie latex"})) == ["LAT"]
    assert codes(client.get(expand, params={"url": URL, "filter": "latex arachide"})) == []
    page = client.get(expand, params={"url": URL, "count": "1", "offset": "1"})
    assert codes(page) == ["ARA"] and page.json()["expansion"]["total"] == 3
    first = client.get(expand, params={"url": URL, "count": "1"}).json()["expansion"]
    assert first["contains"][0]["designation"][0]["language"] == "en"
    posted = client.post(
        expand,
        json={
            "resourceType": "Parameters",
            "parameter": [
                {"name": "url", "valueUri": URL + "?vs"},
                {"name": "filter", "valueString": "arachide"},
            ],
        },
    )
    assert codes(posted) == ["ARA"]
    assert client.get(expand, params={"url": URL, "count": "-1"}).status_code == 400
    unknown = client.get(expand, params={"url": "urn:codoc:fhir:codesystem:NOPE"})
    assert unknown.status_code == 404


def test_terminology_operations_are_in_the_capability_statement(client):
    resources = client.get(f"{BASE}/metadata").json()["rest"][0]["resource"]
    by_type = {item["type"]: item for item in resources}
    names = {op["name"] for op in by_type["CodeSystem"]["operation"]}
    assert {"lookup", "validate-code"} <= names
    assert by_type["ValueSet"]["operation"][0]["name"] == "expand"
