"""Group (cohorts) in dwh_cohort / dwh_cohort_patient, and Group/{id}/$export."""

from __future__ import annotations

import time

import orjson
import pytest

from codoc_fhir.warehouse.schema import dwh_cohort, dwh_cohort_patient
from tests.factories import count_rows
from tests.fhir_client import FhirTestClient
from tests.research.helpers import BASE, create_document, create_patient


def cohort(name: str, *patients: str, **extra) -> dict:
    return {"resourceType": "Group", "type": "person", "actual": True, "name": name,
            "member": [{"entity": {"reference": f"Patient/{p}"}} for p in patients],
            **extra}  # fmt: skip


def test_create_read_update_delete(client, engine):
    first, second = create_patient(client), create_patient(client, "Durand")
    body = cohort("Diabetics", first, identifier=[{"value": "COH-1"}])
    body["member"][0]["period"] = {"start": "2024-01-01T00:00:00Z"}
    created = client.post(f"{BASE}/group/", json=body)
    assert created.status_code == 201, created.text
    group = created.json()
    assert group["quantity"] == 1
    assert group["member"] == [
        {"entity": {"reference": f"Patient/{first}"}, "period": {"start": "2024-01-01T00:00:00Z"}}
    ]
    assert group["identifier"][1] == {"value": "COH-1"}  # as sent (CONTRACT section 9)
    assert client.get(f"{BASE}/Group/{group['id']}").json() == group
    replaced = client.put(
        f"{BASE}/Group/{group['id']}",
        json={**cohort("Diabetics", first, second), "id": group["id"]},
    )
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["quantity"] == 2
    assert replaced.json()["meta"]["versionId"] == "2"
    assert client.delete(f"{BASE}/group/{group['id']}/").status_code == 204
    assert count_rows(engine, dwh_cohort, dwh_cohort_patient) == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"type": "device"}, "Group.type must be 'person'"),
        ({"actual": False}, "Group.actual must be true"),
        ({"name": None}, "Field 'name' is required"),
        ({"member": [{"entity": {"reference": "Patient/999"}}]}, "Patient with ID 999 does not"),
        ({"member": [{"entity": {"reference": "Encounter/1"}}]}, "member[0].entity"),
        ({"member": [{"period": {"start": "2024"}}]}, "member[0].entity' is required"),
        ({"member": [{"entity": {"reference": "Patient/1"}, "inactive": True}]}, "inactive"),
    ],
)
def test_bad_groups_are_refused_and_nothing_is_written(client, engine, change, message):
    create_patient(client)
    body = {key: value for key, value in {**cohort("Bad"), **change}.items() if value is not None}
    answer = client.post(f"{BASE}/Group", json=body)
    assert answer.status_code == 400, answer.text
    assert message in answer.text
    assert count_rows(engine, dwh_cohort, dwh_cohort_patient) == 0


def test_search_by_name_member_and_identifier(client):
    first, second = create_patient(client), create_patient(client, "Durand")
    ids = {}
    for name, members, code in (("Diabète adulte", [first], "A"), ("Asthma", [first, second], "B")):
        answer = client.post(
            f"{BASE}/Group", json=cohort(name, *members, identifier=[{"value": code}])
        )
        ids[name] = answer.json()["id"]

    def names(query: str) -> set[str]:
        answer = client.get(f"{BASE}/Group?{query}")
        assert answer.status_code == 200, answer.text
        return {entry["resource"]["name"] for entry in answer.json().get("entry", [])}

    assert names("name=diabete") == {"Diabète adulte"}
    assert names(f"member=Patient/{second}") == {"Asthma"}
    assert names(f"member={first}") == {"Diabète adulte", "Asthma"}
    assert names("identifier=B") == {"Asthma"}
    assert names(f"_id={ids['Asthma']}") == {"Asthma"}


def test_group_export_has_only_the_members_compartments(make_client, tmp_path):
    client = make_client(CODOC_EXPORT_DIR=str(tmp_path))
    member, other = create_patient(client), create_patient(client, "Durand")
    create_document(client, member, "Diabète.")
    create_document(client, other, "Asthme.")
    group = client.post(f"{BASE}/Group", json=cohort("Members", member)).json()
    headers = {"Prefer": "respond-async", "Accept": "application/fhir+json"}
    answer = client.get(f"{BASE}/Group/{group['id']}/$export", headers=headers)
    assert answer.status_code == 202, answer.text
    deadline, manifest = time.monotonic() + 30, None
    while time.monotonic() < deadline:
        status = client.get(answer.headers["content-location"])
        if status.status_code == 200:
            manifest = status.json()
            break
        time.sleep(0.05)
    assert manifest is not None
    files = {}
    for item in manifest["output"]:
        raw = super(FhirTestClient, client).request("GET", item["url"])
        files[item["type"]] = [orjson.loads(line) for line in raw.content.splitlines()]
    assert [p["id"] for p in files["Patient"]] == [member]
    assert [d["subject"]["reference"] for d in files["DocumentReference"]] == [f"Patient/{member}"]
    assert "Group" not in files
    missing = client.get(f"{BASE}/Group/999/$export", headers=headers)
    assert missing.status_code == 404
