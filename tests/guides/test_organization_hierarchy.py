"""guides/organization-hierarchy.md replayed in order: a site, two departments, five units,
the hierarchy read back downwards and upwards, the update; then the complete script and the
"hierarchy with instances" use case."""

from __future__ import annotations

from typing import Any

from codoc_fhir.warehouse.schema import dwh_thesaurus_site
from tests.factories import count_rows
from tests.guides.steps import BASE, expect, issue, usual_identifier


def create_organization(client, code: str, org_type: str, name: str, parent_id=None) -> dict:
    """The guide's create_organization(): 201 expected, the created resource returned."""
    data: dict[str, Any] = {
        "resourceType": "Organization",
        "identifier": [{"value": code}],
        "type": [{"coding": [{"code": org_type}]}],
        "name": name,
    }
    if parent_id:
        data["partOf"] = {"reference": f"Organization/{parent_id}"}
    org = expect(client.post(f"{BASE}/organization/", json=data), 201)
    assert org["name"] == name
    assert usual_identifier(org) == code
    assert org["type"][0]["coding"][0]["code"] == org_type  # the level comes first
    if parent_id:
        assert org["partOf"]["reference"] == f"Organization/{parent_id}"
    else:
        assert "partOf" not in org
    return org


def get_parent_chain(client, org_id: str) -> list[dict]:
    """Step 5: follow partOf upwards, splitting the reference as the guide does."""
    chain = []
    current_id = org_id
    while current_id:
        org = expect(client.get(f"{BASE}/organization/{current_id}/"), 200)
        chain.append(
            {"id": org["id"], "name": org["name"], "type": org["type"][0]["coding"][0]["code"]}
        )
        if "partOf" not in org:
            break
        current_id = org["partOf"]["reference"].split("/")[-1]
    return chain


def test_organization_hierarchy_guide_replayed_in_order(client, engine):
    # step 1: the site
    site = create_organization(client, "CHU_PARIS", "site", "CHU Paris - Saint-Antoine Site")
    site_id = site["id"]

    # step 2: two departments under the site
    cardio_id = create_organization(
        client, "CARDIO", "department", "Cardiology Department", site_id
    )["id"]
    neuro_id = create_organization(client, "NEURO", "department", "Neurology Department", site_id)[
        "id"
    ]
    assert cardio_id != neuro_id

    # step 3: the units, with the codes the guide's loops compute
    units_cardio = [
        create_organization(client, f"CARDIO_{name[5]}", "unit", f"Cardiology - {name}", cardio_id)
        for name in ["Unit A - Intensive Care", "Unit B - Hospitalization", "Unit C - Day Hospital"]
    ]
    units_neuro = [
        create_organization(
            client,
            f"NEURO_{name.split()[0].upper()}",
            "unit",
            f"Neurology - {name}",
            neuro_id,
        )
        for name in ["Stroke Unit", "Epilepsy Unit"]
    ]
    assert [usual_identifier(unit) for unit in units_cardio + units_neuro] == [
        "CARDIO_A",
        "CARDIO_B",
        "CARDIO_C",
        "NEURO_STROKE",
        "NEURO_EPILEPSY",
    ]

    # step 4: read the site and the departments; type[0].coding[0].code is the level
    printed = []
    for org_id in [site_id, cardio_id, neuro_id]:
        org = expect(client.get(f"{BASE}/organization/{org_id}/"), 200)
        printed.append((org["id"], org["type"][0]["coding"][0]["code"]))
    assert printed == [(site_id, "site"), (cardio_id, "department"), (neuro_id, "department")]

    # step 5: the parent chain of the first cardiology unit
    chain = get_parent_chain(client, units_cardio[0]["id"])
    assert [(org["name"], org["type"]) for org in chain] == [
        ("Cardiology - Unit A - Intensive Care", "unit"),
        ("Cardiology Department", "department"),
        ("CHU Paris - Saint-Antoine Site", "site"),
    ]

    # "Update an Organization": rename the department with PUT
    updated = expect(
        client.put(
            f"{BASE}/organization/{cardio_id}/",
            json={
                "resourceType": "Organization",
                "identifier": [{"value": "CARDIO"}],
                "type": [{"coding": [{"code": "department"}]}],
                "name": "Cardiology and Vascular Diseases Department",
                "partOf": {"reference": f"Organization/{site_id}"},
            },
        ),
        200,
    )
    assert updated["id"] == cardio_id
    assert updated["name"] == "Cardiology and Vascular Diseases Department"
    assert updated["meta"]["versionId"] == "2"
    # the children now show the new name as their parent's display
    unit_a = expect(client.get(f"{BASE}/organization/{units_cardio[0]['id']}/"), 200)
    assert unit_a["partOf"]["display"] == "Cardiology and Vascular Diseases Department"

    # key points: a unit cannot point to a site; an organization still referenced (here by
    # its children) cannot be deleted
    wrong_level = {
        "resourceType": "Organization",
        "identifier": [{"value": "CARDIO_D"}],
        "type": [{"coding": [{"code": "unit"}]}],
        "name": "Cardiology - Unit D",
        "partOf": {"reference": f"Organization/{site_id}"},
    }
    assert "Department" in issue(
        client.post(f"{BASE}/organization/", json=wrong_level), 400, "invalid"
    )
    issue(client.delete(f"{BASE}/organization/{site_id}/"), 409, "conflict")
    assert count_rows(engine, dwh_thesaurus_site) == 1


def test_organization_hierarchy_complete_script(client):
    site = create_organization(client, "CHU_PARIS", "site", "CHU Paris - Saint-Antoine Site")
    cardio = create_organization(
        client, "CARDIO", "department", "Cardiology Department", site["id"]
    )
    neuro = create_organization(client, "NEURO", "department", "Neurology Department", site["id"])
    cardio_units = [
        create_organization(client, code, "unit", name, cardio["id"])
        for code, name in [
            ("CARDIO_A", "Cardiology - Unit A - Intensive Care"),
            ("CARDIO_B", "Cardiology - Unit B - Hospitalization"),
            ("CARDIO_C", "Cardiology - Unit C - Day Hospital"),
        ]
    ]
    neuro_units = [
        create_organization(client, code, "unit", name, neuro["id"])
        for code, name in [
            ("NEURO_STROKE", "Neurology - Stroke Unit"),
            ("NEURO_EPIL", "Neurology - Epilepsy Unit"),
        ]
    ]
    # 1 site -> 2 departments -> 5 units, each with its own id
    ids = [site["id"], cardio["id"], neuro["id"]] + [u["id"] for u in cardio_units + neuro_units]
    assert len(set(ids)) == 8
    # a second run of the script: the codes are taken (unique per level) -> 409 duplicate
    again = {
        "resourceType": "Organization",
        "identifier": [{"value": "CHU_PARIS"}],
        "type": [{"coding": [{"code": "site"}]}],
        "name": "CHU Paris - Saint-Antoine Site",
    }
    issue(client.post(f"{BASE}/organization/", json=again), 409, "duplicate")


def test_hierarchy_with_instances(client):
    """Advanced use case: instance -> sites -> department -> unit."""
    instance = create_organization(client, "GH_PARIS", "instance", "Paris Hospital Group")
    assert instance["id"].startswith("instance-")
    site1 = create_organization(
        client, "SITE_A", "site", "Site A - Pitié-Salpêtrière", instance["id"]
    )
    site2 = create_organization(client, "SITE_B", "site", "Site B - Saint-Antoine", instance["id"])
    assert site1["partOf"]["display"] == site2["partOf"]["display"] == "Paris Hospital Group"
    dept = create_organization(client, "CARDIO", "department", "Cardiology", site1["id"])
    unit = create_organization(client, "CARDIO_A", "unit", "Cardiology - Unit A", dept["id"])
    chain = get_parent_chain(client, unit["id"])
    assert [org["type"] for org in chain] == ["unit", "department", "site", "instance"]
