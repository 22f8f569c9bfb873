"""History and vread (CONTRACT section 10) and ids never reused (section 8), raw HTTP."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from codoc_fhir.warehouse.schema import dwh_resource_history
from tests.factories import count_rows, seed_procedure_context

BASE = "/v4.3.0"
PROCEDURE = {
    "resourceType": "Procedure",
    "status": "completed",
    "code": {"coding": [{"code": "COLO001", "display": "Colonoscopy"}]},
    "subject": {"reference": "Patient/1"},
    "performedDateTime": "2024-01-15T14:00:00Z",
}


@pytest.fixture
def context(client, engine):
    return seed_procedure_context(engine)


def _life(client) -> None:
    """Procedure/1: created, replaced, patched, deleted."""
    assert client.post(f"{BASE}/Procedure", json=PROCEDURE).status_code == 201
    replaced = dict(PROCEDURE, id="1", performedDateTime="2024-02-01T10:00:00Z")
    assert client.put(f"{BASE}/Procedure/1", json=replaced).status_code == 200
    patch = {"performedDateTime": "2024-03-01T10:00:00Z"}
    assert client.patch(f"{BASE}/Procedure/1", json=patch).status_code == 200
    assert client.delete(f"{BASE}/Procedure/1").status_code == 204


def test_created_updated_twice_and_deleted_reads_as_four_versions(client, context):
    _life(client)
    bundle = client.get(f"{BASE}/Procedure/1/_history").json()
    assert bundle["type"] == "history"
    assert bundle["total"] == 4
    entries = bundle["entry"]
    assert [e["request"]["method"] for e in entries] == ["DELETE", "PATCH", "PUT", "POST"]
    assert [e["response"]["status"] for e in entries] == [
        "204 No Content",
        "200 OK",
        "200 OK",
        "201 Created",
    ]
    assert [e["response"]["etag"] for e in entries] == ['W/"4"', 'W/"3"', 'W/"2"', 'W/"1"']
    assert "resource" not in entries[0]
    assert [e["resource"]["performedDateTime"] for e in entries[1:]] == [
        "2024-03-01T10:00:00Z",
        "2024-02-01T10:00:00Z",
        "2024-01-15T14:00:00Z",
    ]
    assert entries[3]["request"]["url"] == "Procedure"
    assert entries[0]["request"]["url"] == "Procedure/1"


def test_vread_answers_each_version_and_the_deletion_is_gone(client, context):
    _life(client)
    first = client.get(f"{BASE}/Procedure/1/_history/1")
    assert first.status_code == 200
    assert first.json()["meta"]["versionId"] == "1"
    assert first.headers["etag"] == 'W/"1"'
    assert first.json()["performedDateTime"] == "2024-01-15T14:00:00Z"
    assert client.get(f"{BASE}/Procedure/1/_history/3").json()["meta"]["versionId"] == "3"
    deleted = client.get(f"{BASE}/Procedure/1/_history/4")
    assert deleted.status_code == 410
    assert deleted.json()["issue"][0]["code"] == "deleted"
    for never in ("5", "0", "abc"):
        assert client.get(f"{BASE}/Procedure/1/_history/{never}").status_code == 404


def test_a_deleted_resource_is_gone_for_read_update_and_delete(client, context):
    _life(client)
    for response in (
        client.get(f"{BASE}/Procedure/1"),
        client.put(f"{BASE}/Procedure/1", json=dict(PROCEDURE, id="1")),
        client.patch(f"{BASE}/Procedure/1", json={"performedDateTime": "2024-04-01"}),
        client.delete(f"{BASE}/Procedure/1"),
    ):
        assert response.status_code == 410
        assert response.json()["issue"][0]["code"] == "deleted"
    # a Procedure that never existed is still a 404
    assert client.get(f"{BASE}/Procedure/99").status_code == 404


def test_ids_are_never_reused_after_a_delete(client, context):
    _life(client)
    again = client.post(f"{BASE}/Procedure", json=PROCEDURE).json()
    assert again["id"] == "2"
    assert client.get(f"{BASE}/Procedure/1").status_code == 410
    patient = client.post(
        f"{BASE}/Patient",
        json={
            "resourceType": "Patient",
            "identifier": [{"value": "IPP-NEW"}],
            "gender": "female",
            "birthDate": "1990-01-01",
        },
    ).json()
    assert client.delete(f"{BASE}/Patient/{patient['id']}").status_code == 204
    other = client.post(
        f"{BASE}/Patient",
        json={
            "resourceType": "Patient",
            "identifier": [{"value": "IPP-NEXT"}],
            "gender": "male",
            "birthDate": "1991-01-01",
        },
    ).json()
    assert int(other["id"]) == int(patient["id"]) + 1


def test_codoc_paths_answer_history_and_vread(client, context):
    _life(client)
    codoc = client.get(f"{BASE}/procedure/1/_history/")
    assert codoc.status_code == 200
    assert codoc.json()["total"] == 4
    assert client.get(f"{BASE}/procedure/1/_history/2/").json()["meta"]["versionId"] == "2"
    assert client.get(f"{BASE}/procedure/_history/").json()["total"] == 4


def test_type_and_system_history_with_count_and_paging(client, context, engine):
    _life(client)
    client.post(f"{BASE}/Procedure", json=PROCEDURE)  # Procedure/2, version 1
    procedures = client.get(f"{BASE}/Procedure/_history").json()
    assert procedures["total"] == 5
    assert {e["fullUrl"].rsplit("/", 2)[-2] for e in procedures["entry"]} == {"Procedure"}
    everything = client.get(f"{BASE}/_history").json()
    assert everything["total"] == count_rows(engine, dwh_resource_history) == 5
    seen = []
    url = f"{BASE}/Procedure/_history?_count=2"
    while url:
        page = client.get(url).json()
        assert len(page.get("entry", [])) <= 2
        seen += [(e["fullUrl"], e["response"]["etag"]) for e in page.get("entry", [])]
        url = next((link["url"] for link in page["link"] if link["relation"] == "next"), None)
    assert len(seen) == len(set(seen)) == 5
    assert seen[0][1] == 'W/"1"' and seen[0][0].endswith("/Procedure/2")


def test_since_and_at(client, context):
    client.post(f"{BASE}/Procedure", json=PROCEDURE)
    time.sleep(1.1)
    between = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    time.sleep(1.1)
    client.patch(f"{BASE}/Procedure/1", json={"performedDateTime": "2024-05-01T00:00:00Z"})
    bundle = client.get(f"{BASE}/Procedure/1/_history", params={"_since": between}).json()
    assert [e["response"]["etag"] for e in bundle["entry"]] == ['W/"2"']
    # at an instant between the writes only version 1 was current
    instant = client.get(f"{BASE}/Procedure/_history", params={"_at": between}).json()
    assert [e["response"]["etag"] for e in instant["entry"]] == ['W/"1"']
    future = client.get(f"{BASE}/Procedure/1/_history", params={"_since": "2999-01-01"})
    assert future.status_code == 200 and future.json()["total"] == 0


def test_bad_history_parameters_are_400(client, context):
    client.post(f"{BASE}/Procedure", json=PROCEDURE)
    for query in ("_count=zero", "_since=yesterday", "_cursor=tampered", "color=red"):
        response = client.get(f"{BASE}/Procedure/_history?{query}")
        assert response.status_code == 400, query
        assert response.json()["resourceType"] == "OperationOutcome"
    assert client.get(f"{BASE}/Procedure/7/_history").status_code == 404


def test_sub_path_history(client, context):
    movement = {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"code": "IMP"},
        "subject": {"reference": "Patient/1"},
        "partOf": {"reference": "Encounter/1"},
        "period": {"start": "2024-01-14T09:00:00Z"},
        "serviceProvider": {"reference": "Organization/unit-1"},
    }
    created = client.post(f"{BASE}/encounter/movement/", json=movement)
    assert created.status_code == 201, created.text
    bundle = client.get(f"{BASE}/encounter/movement/1/_history/").json()
    assert bundle["entry"][0]["fullUrl"].endswith("/Encounter/movement-1")
    assert client.get(f"{BASE}/Encounter/movement-1/_history/1").status_code == 200
    assert client.get(f"{BASE}/encounter/movement/_history").json()["total"] == 1
    stays = client.get(f"{BASE}/encounter/stay/_history").json()
    assert stays["total"] == 0


def test_history_in_a_batch(client, context):
    _life(client)
    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"request": {"method": "GET", "url": "Procedure/1/_history"}},
            {"request": {"method": "GET", "url": "Procedure/1/_history/2"}},
            {"request": {"method": "GET", "url": "_history?_count=1"}},
            {"request": {"method": "GET", "url": "Procedure/1/_history/4"}},
        ],
    }
    answer = client.post(f"{BASE}/", json=batch).json()
    entries = answer["entry"]
    assert entries[0]["resource"]["total"] == 4
    assert entries[1]["resource"]["meta"]["versionId"] == "2"
    assert len(entries[2]["resource"]["entry"]) == 1
    assert entries[3]["response"]["status"].startswith("410")


def test_history_is_in_the_capability_statement(client):
    statement = client.get(f"{BASE}/metadata").json()
    rest = statement["rest"][0]
    procedure = next(item for item in rest["resource"] if item["type"] == "Procedure")
    codes = {item["code"] for item in procedure["interaction"]}
    assert {"vread", "history-instance", "history-type"} <= codes
    assert procedure["readHistory"] is True
    assert {"code": "history-system"} in rest["interaction"]
