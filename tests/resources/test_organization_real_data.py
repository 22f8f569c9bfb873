"""Organization from real generated data (CONTRACT 9): a Synthea provider Organization
(type `prov`, no partOf, a 36-character identifier, telecom, address, extensions) is a
site; an Organization without identifier gets a derived code; a read answers what was
sent except the differences organization.md lists (id and meta, the official identifier
first, the level coding first in the type, the read-only counter extensions first,
partOf with the parent's name)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from sqlalchemy import select

from codoc_fhir.warehouse.schema import (
    dwh_thesaurus_department,
    dwh_thesaurus_site,
    dwh_thesaurus_unit,
    hospital_instance,
)
from tests.factories import count_rows

ORG = "/v4.3.0/organization/"
HL7_TYPES = "http://terminology.hl7.org/CodeSystem/organization-type"
LEVEL_SYSTEM = "urn:codoc:fhir:organization-level"
COUNTER = "urn:codoc:fhir:extension:"
ORG_TABLES = (hospital_instance, dwh_thesaurus_site, dwh_thesaurus_department, dwh_thesaurus_unit)

SYNTHEA_PROVIDER: dict[str, Any] = {
    "resourceType": "Organization",
    "id": "ef58ea08-d883-3957-8300-150554edc8fb",
    "meta": {"profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-organization"]},
    "extension": [
        {
            "url": "http://synthetichealth.github.io/synthea/utilization-encounters-extension",
            "valueInteger": 0,
        },
        {
            "url": "http://synthetichealth.github.io/synthea/utilization-procedures-extension",
            "valueInteger": 3,
        },
    ],
    "identifier": [
        {
            "system": "https://github.com/synthetichealth/synthea",
            "value": "ef58ea08-d883-3957-8300-150554edc8fb",
        }
    ],
    "active": True,
    "type": [
        {
            "coding": [{"system": HL7_TYPES, "code": "prov", "display": "Healthcare Provider"}],
            "text": "Healthcare Provider",
        }
    ],
    "name": "HALLMARK HEALTH SYSTEM",
    "telecom": [{"system": "phone", "value": "7819793000"}],
    "address": [
        {
            "line": ["585 LEBANON STREET"],
            "city": "MELROSE",
            "state": "MA",
            "postalCode": "02176",
            "country": "US",
        }
    ],
    "contact": [{"name": {"text": "Front desk"}, "telecom": [{"system": "email", "value": "a@b"}]}],
    "endpoint": [{"reference": "Endpoint/does-not-exist"}],
}

SITE_CODING = {"system": LEVEL_SYSTEM, "code": "site", "display": "Site"}


def counters(patients: int = 0, stays: int = 0, children: int = 0) -> list[dict[str, Any]]:
    values = {"patient_count": patients, "stay_count": stays, "child_count": children}
    return [{"url": COUNTER + name, "valueInteger": count} for name, count in values.items()]


def expected_site(sent: dict[str, Any], ident: str, **counts: int) -> dict[str, Any]:
    """What a read answers for a site sent as `sent`: organization.md's differences."""
    answer = copy.deepcopy(sent)
    answer.pop("meta", None)
    answer["id"] = ident
    answer["identifier"] = [{"use": "official", "value": ident}, *sent.get("identifier", [])]
    answer["extension"] = [*counters(**counts), *sent.get("extension", [])]
    answer["type"][0]["coding"].insert(0, SITE_CODING)
    return answer


def without_meta(resource: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in resource.items() if key != "meta"}


def site_rows(engine: Any) -> list[tuple]:
    site = dwh_thesaurus_site.c
    with engine.connect() as conn:
        query = select(site.site_code, site.site_str, site.instance_id).order_by(site.site_num)
        return [tuple(row) for row in conn.execute(query)]


def test_synthea_provider_is_a_site_and_reads_back_unchanged(client, engine):
    response = client.post(ORG, json=SYNTHEA_PROVIDER)
    assert response.status_code == 201, response.text
    expected = expected_site(SYNTHEA_PROVIDER, "site-1")
    assert without_meta(response.json()) == expected
    assert without_meta(client.get("/v4.3.0/Organization/site-1").json()) == expected
    # the identifier is longer than site_code (30): a stable code is derived from it
    [(code, name, instance)] = site_rows(engine)
    assert code.startswith("~") and len(code) == 17
    assert (name, instance) == ("HALLMARK HEALTH SYSTEM", None)


def test_derived_code_is_stable_across_imports(client, engine):
    """The same Organization loaded again (after a delete, or in another database) gets
    the same code; an update without a usable identifier keeps it."""
    client.post(ORG, json=SYNTHEA_PROVIDER)
    [(first, _, _)] = site_rows(engine)
    assert client.delete(f"{ORG}site-1/").status_code in (200, 204)
    client.post(ORG, json=SYNTHEA_PROVIDER)
    [(again, _, _)] = site_rows(engine)
    assert again == first
    renamed = dict(SYNTHEA_PROVIDER, id="site-2", name="Hallmark Health")
    renamed.pop("identifier")
    assert client.put(f"{ORG}site-2/", json=renamed).status_code == 200
    assert site_rows(engine) == [(first, "Hallmark Health", None)]


def test_organization_without_identifier_gets_a_derived_code(client, engine):
    body = {
        "resourceType": "Organization",
        "type": [{"coding": [{"system": HL7_TYPES, "code": "prov"}]}],
        "name": "Clinique du Parc",
        "alias": ["CDP"],
    }
    response = client.post(ORG, json=body)
    assert response.status_code == 201, response.text
    expected = {
        **body,
        "id": "site-1",
        "identifier": [{"use": "official", "value": "site-1"}],
        "extension": counters(),
        "type": [
            {
                "coding": [
                    SITE_CODING,
                    {"system": HL7_TYPES, "code": "prov", "display": "Healthcare Provider"},
                ]
            }
        ],
    }
    assert without_meta(client.get(f"{ORG}site-1/").json()) == expected
    [(code, _, _)] = site_rows(engine)
    assert code.startswith("~")
    # the same name at the same level and parent, without identifier: the same code
    again = client.post(ORG, json=body)
    assert again.status_code == 409
    assert count_rows(engine, *ORG_TABLES) == 1


def test_same_name_under_two_parents_gets_two_codes(client, engine):
    for code in ("S1", "S2"):
        client.post(
            ORG,
            json={
                "resourceType": "Organization",
                "identifier": [{"value": code}],
                "type": [{"coding": [{"code": "site"}]}],
                "name": code,
            },
        )
    for site in ("site-1", "site-2"):
        response = client.post(
            ORG,
            json={
                "resourceType": "Organization",
                "type": [{"coding": [{"system": HL7_TYPES, "code": "dept"}]}],
                "name": "Cardiology",
                "partOf": {"reference": f"Organization/{site}"},
            },
        )
        assert response.status_code == 201, response.text
    department = dwh_thesaurus_department.c
    with engine.connect() as conn:
        codes = conn.execute(select(department.department_code)).scalars().all()
    assert len(set(codes)) == 2


def test_several_identifiers_the_first_usual_one_is_the_code(client, engine):
    body = copy.deepcopy(SYNTHEA_PROVIDER)
    body["identifier"] = [
        {"use": "official", "system": "urn:oid:2.16.840.1.113883.4.7", "value": "CLIA-99"},
        {"system": "http://hl7.org/fhir/sid/us-npi", "value": "1234567893"},
        {"use": "secondary", "value": "OLD-7", "assigner": {"reference": "Organization/nowhere"}},
    ]
    response = client.post(ORG, json=body)
    assert response.status_code == 201, response.text
    assert site_rows(engine)[0][0] == "1234567893"
    assert without_meta(client.get(f"{ORG}site-1/").json()) == expected_site(body, "site-1")


def test_partof_outside_the_tree_is_kept_for_a_site(client, engine):
    body = dict(SYNTHEA_PROVIDER, partOf={"reference": "Organization/health-system-1"})
    response = client.post(ORG, json=body)
    assert response.status_code == 201, response.text
    assert client.get(f"{ORG}site-1/").json()["partOf"] == body["partOf"]
    assert site_rows(engine)[0][2] is None


def test_a_department_still_needs_a_parent_in_the_tree(client, engine):
    body = {
        "resourceType": "Organization",
        "type": [{"coding": [{"system": HL7_TYPES, "code": "dept"}]}],
        "name": "Cardiology",
        "partOf": {"reference": "Organization?identifier=x|y"},
    }
    response = client.post(ORG, json=body)
    assert response.status_code == 400
    assert "partOf" in response.json()["issue"][0]["diagnostics"]
    assert count_rows(engine, *ORG_TABLES) == 0


@pytest.mark.parametrize(
    "kind",
    [
        [{"coding": [{"system": HL7_TYPES, "code": "pay", "display": "Payer"}]}],
        [{"coding": [{"system": HL7_TYPES, "code": "ins"}]}],
        [{"coding": [{"system": "http://example.org/types", "code": "site"}]}],
        [{"text": "External laboratory"}],
        None,
    ],
)
def test_organization_outside_the_four_levels_is_a_plain_organization(client, engine, kind):
    """A payer, an insurer, a code of another system, no type: never a site, department or
    unit of the tree, but a plain Organization stored whole (`org-N`) and answered as sent."""
    body = {"resourceType": "Organization", "name": "Aetna"}
    if kind is not None:
        body["type"] = kind
    response = client.post(ORG, json=body)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["id"].startswith("org-")
    assert count_rows(engine, *ORG_TABLES) == 0
    again = client.get(f"/v4.3.0/Organization/{created['id']}").json()
    assert {k: v for k, v in again.items() if k not in ("id", "meta")} == body
    found = client.get("/v4.3.0/Organization?name=Aetna").json()
    assert [entry["resource"]["id"] for entry in found["entry"]] == [created["id"]]


def test_an_identifier_longer_than_the_code_is_searchable(client):
    """Synthea names its Organizations by identifier (`Organization?identifier=...`)."""
    client.post(ORG, json=SYNTHEA_PROVIDER)
    system, value = (SYNTHEA_PROVIDER["identifier"][0][key] for key in ("system", "value"))
    for query in (f"{system}|{value}", value):
        bundle = client.get(f"/v4.3.0/Organization?identifier={query}").json()
        assert [entry["resource"]["id"] for entry in bundle.get("entry", [])] == ["site-1"]
    assert client.get("/v4.3.0/Organization?identifier=urn:x|nothing").json().get("entry", []) == []
