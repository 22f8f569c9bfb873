"""Bulk Data $export (kick-off, status, manifest, files, cancel) and Patient $everything."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from sqlalchemy import update

from codoc_fhir.bulk.export_jobs import join_exports
from codoc_fhir.warehouse.schema import dwh_data, dwh_patient, dwh_patient_stay, fhir_export_job
from tests.factories import (
    count_rows,
    make_document,
    make_patient,
    make_stay,
    seed_procedure_context,
)
from tests.fhir_client import FhirTestClient, assert_valid_fhir
from tests.security.tokens import AUTH_ENV, bearer, hs256

BASE = "/v4.3.0"
ASYNC = {"Prefer": "respond-async", "Accept": "application/fhir+json"}
PROCEDURE = {
    "resourceType": "Procedure",
    "status": "completed",
    "code": {"coding": [{"code": "COLO001", "display": "Colonoscopy"}]},
    "subject": {"reference": "Patient/1"},
    "encounter": {"reference": "Encounter/1"},
    "performedDateTime": "2024-01-15T14:00:00Z",
}


def observation(patient: int, code: str = "GLU") -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"code": code}]},
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": "2024-01-21T07:00:00Z",
        "valueQuantity": {"value": 95, "unit": "mg/dL"},
    }


def seed(engine, client, headers: dict[str, str] | None = None) -> None:
    """Patient 1 with a stay, a document, two procedures and an observation; patient 2
    with a stay and an observation. Factory rows were last updated on 2024-01-01."""
    seed_procedure_context(engine)
    other = make_patient(engine, lastname="Other", firstname="Eve", sex="F")
    make_stay(engine, patient_num=other)
    make_document(engine, patient_num=1, stay_num=1)
    for body in (PROCEDURE, PROCEDURE, observation(1), observation(other, "HB")):
        path = f"{BASE}/{body['resourceType']}"
        assert client.post(path, json=body, headers=headers or {}).status_code == 201


@pytest.fixture
def export_client(make_client, tmp_path):
    return make_client(CODOC_EXPORT_DIR=str(tmp_path))


def kick_off(client, path: str = "$export", headers: dict[str, str] | None = None) -> str:
    response = client.get(f"{BASE}/{path}", headers={**ASYNC, **(headers or {})})
    assert response.status_code == 202, response.text
    return response.headers["content-location"]


def wait_for_manifest(client, status_url: str, headers: dict[str, str] | None = None) -> dict:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        response = client.get(status_url, headers=headers or {})
        if response.status_code == 200:
            assert response.headers["content-type"].startswith("application/json")
            return response.json()
        assert response.status_code == 202, response.text
        assert "resource types written" in response.headers["x-progress"]
        time.sleep(0.05)
    raise AssertionError("the export did not complete")


def read_file(client, url: str, headers: dict[str, str] | None = None) -> list[dict]:
    # NDJSON is not one JSON document: bypass the client's answer validation, check each line
    response = super(FhirTestClient, client).request("GET", url, headers=headers or {})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/fhir+ndjson")
    return [orjson.loads(line) for line in response.content.splitlines()]


def exported(client, manifest: dict, headers: dict[str, str] | None = None) -> dict[str, list]:
    return {item["type"]: read_file(client, item["url"], headers) for item in manifest["output"]}


def ids(resources: list[dict]) -> set[str]:
    return {f"{resource['resourceType']}/{resource['id']}" for resource in resources}


def test_system_export_kick_off_poll_and_files(export_client, engine):
    seed(engine, export_client)
    status_url = kick_off(export_client)
    assert "/v4.3.0/$export-status/" in status_url
    manifest = wait_for_manifest(export_client, status_url)
    assert manifest["request"].endswith("/v4.3.0/$export")
    assert manifest["requiresAccessToken"] is False
    assert manifest["transactionTime"].endswith(("Z", "+00:00"))
    assert manifest["error"] == []
    files = exported(export_client, manifest)
    for item in manifest["output"]:
        assert item["count"] == len(files[item["type"]])
        total = export_client.get(f"{BASE}/{item['type']}?_summary=count").json()["total"]
        assert item["count"] == total
    assert {"Patient", "Encounter", "Procedure", "Observation", "DocumentReference"} <= set(files)
    assert {"Organization"} <= set(files)
    assert len(files["Patient"]) == count_rows(engine, dwh_patient) == 2
    assert len(files["Procedure"]) == 2
    for resources in files.values():
        for resource in resources:
            assert_valid_fhir(resource)
            read = export_client.get(f"{BASE}/{resource['resourceType']}/{resource['id']}")
            assert read.json() == resource


def test_type_and_since_narrow_the_export(export_client, engine):
    seed(engine, export_client)
    manifest = wait_for_manifest(export_client, kick_off(export_client, "$export?_type=Patient"))
    assert [item["type"] for item in manifest["output"]] == ["Patient"]
    pairs = "_type=Procedure,Patient&_type=Observation&_outputFormat=application/fhir%2Bndjson"
    manifest = wait_for_manifest(export_client, kick_off(export_client, f"$export?{pairs}"))
    assert {item["type"] for item in manifest["output"]} == {"Procedure", "Patient", "Observation"}
    since = "$export?_since=2025-01-01T00:00:00Z"
    files = exported(
        export_client, wait_for_manifest(export_client, kick_off(export_client, since))
    )
    # factory rows were last updated in 2024: only what the API wrote since is exported
    assert set(files) == {"Procedure", "Observation", "CodeSystem"}
    with engine.begin() as conn:
        conn.execute(
            update(dwh_patient)
            .where(dwh_patient.c.patient_num == 2)
            .values(update_date=datetime.now(UTC))
        )
    files = exported(
        export_client, wait_for_manifest(export_client, kick_off(export_client, since))
    )
    assert ids(files["Patient"]) == {"Patient/2"}


@pytest.mark.parametrize(
    "query",
    [
        "_type=Nothing",
        "_since=yesterday",
        "_outputFormat=text/csv",
        "_typeFilter=Patient%3Fgender%3Dmale",
    ],
)
def test_bad_kick_offs_are_400_and_record_no_job(export_client, engine, query):
    response = export_client.get(f"{BASE}/$export?{query}", headers=ASYNC)
    assert response.status_code == 400
    assert response.json()["resourceType"] == "OperationOutcome"
    assert count_rows(engine, fhir_export_job) == 0


def test_kick_off_needs_respond_async(export_client, engine):
    response = export_client.get(f"{BASE}/$export")
    assert response.status_code == 400
    assert "respond-async" in response.json()["issue"][0]["diagnostics"]
    assert count_rows(engine, fhir_export_job) == 0


def test_patient_level_export_has_compartment_types_only(export_client, engine):
    seed(engine, export_client)
    for path in ("Patient/$export", "patient/$export/"):
        files = exported(
            export_client, wait_for_manifest(export_client, kick_off(export_client, path))
        )
        assert "Organization" not in files and "CodeSystem" not in files
        assert ids(files["Patient"]) == {"Patient/1", "Patient/2"}
        assert len(files["Encounter"]) == count_rows(engine, dwh_patient_stay)
    response = export_client.get(f"{BASE}/Patient/$export?_type=Organization", headers=ASYNC)
    assert response.status_code == 400


def test_patient_scoped_token_exports_only_its_patient(make_client, engine, tmp_path):
    client = make_client(CODOC_EXPORT_DIR=str(tmp_path), **AUTH_ENV)
    seed(engine, client, bearer(hs256()))
    mine = bearer(hs256("patient/*.read", sub="pat-2", patient="2"))
    status_url = kick_off(client, "Patient/$export", mine)
    manifest = wait_for_manifest(client, status_url, mine)
    assert manifest["requiresAccessToken"] is True
    files = exported(client, manifest, mine)
    assert ids(files["Patient"]) == {"Patient/2"}
    for resources in files.values():
        for resource in resources:
            subject = resource.get("subject") or {"reference": "Patient/2"}
            assert subject["reference"] == "Patient/2"
    assert "Procedure" not in files and "DocumentReference" not in files
    # another caller, even an all-powerful one, does not see the job
    for other in (hs256(sub="alice"), hs256("patient/*.read", sub="pat-2", patient="1")):
        assert client.get(status_url, headers=bearer(other)).status_code == 404
        url = manifest["output"][0]["url"]
        assert client.get(url, headers=bearer(other)).status_code == 404
        assert client.delete(status_url, headers=bearer(other)).status_code == 404
    assert client.get(status_url).status_code == 401


def test_scopes_decide_the_exported_types(make_client, engine, tmp_path):
    client = make_client(CODOC_EXPORT_DIR=str(tmp_path), **AUTH_ENV)
    seed(engine, client, bearer(hs256()))
    narrow = bearer(hs256("system/Patient.read system/Procedure.read"))
    files = exported(
        client,
        wait_for_manifest(client, kick_off(client, "Patient/$export", narrow), narrow),
        narrow,
    )
    assert set(files) == {"Patient", "Procedure"}
    response = client.get(f"{BASE}/Patient/$export?_type=Observation", headers={**ASYNC, **narrow})
    assert response.status_code == 403


def test_delete_cancels_and_forgets_the_job(export_client, engine, tmp_path):
    seed(engine, export_client)
    status_url = kick_off(export_client)
    assert export_client.delete(status_url).status_code == 202
    join_exports()
    assert export_client.get(status_url).status_code == 404
    assert count_rows(engine, fhir_export_job) == 0
    assert list(tmp_path.iterdir()) == []
    status_url = kick_off(export_client)
    manifest = wait_for_manifest(export_client, status_url)
    assert export_client.delete(status_url + "/").status_code == 202
    assert export_client.get(manifest["output"][0]["url"]).status_code == 404
    assert list(tmp_path.iterdir()) == []


def test_unknown_jobs_and_files_are_404(export_client, engine):
    seed(engine, export_client)
    assert export_client.get(f"{BASE}/$export-status/99").status_code == 404
    assert export_client.get(f"{BASE}/$export-status/abc").status_code == 404
    manifest = wait_for_manifest(export_client, kick_off(export_client))
    job_files = manifest["output"][0]["url"].rsplit("/", 1)[0]
    for name in ("Nothing.ndjson", "..%2F..%2Fetc%2Fpasswd"):
        assert export_client.get(f"{job_files}/{name}").status_code == 404
    assert read_file(export_client, manifest["output"][0]["url"])


def test_capability_statement_lists_the_operations(export_client):
    rest = export_client.get(f"{BASE}/metadata").json()["rest"][0]
    assert [item["name"] for item in rest["operation"]] == ["export"]
    patient = next(item for item in rest["resource"] if item["type"] == "Patient")
    assert {item["name"] for item in patient["operation"]} == {"export", "everything", "validate"}


# --- $everything ---------------------------------------------------------------------------


def everything(client, path: str, headers: dict[str, str] | None = None) -> tuple[set, int]:
    """Every resource over all pages (following next links), and the first page's total."""
    found: list[dict] = []
    response = client.get(f"{BASE}/{path}", headers=headers or {})
    assert response.status_code == 200, response.text
    total = response.json()["total"]
    while True:
        bundle = response.json()
        assert bundle["type"] == "searchset"
        found += [entry["resource"] for entry in bundle.get("entry", [])]
        following = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
        if not following:
            break
        response = client.get(following[0], headers=headers or {})
    assert len(found) == len(ids(found)) == total
    return ids(found), total


def test_everything_returns_the_patient_and_its_compartment(export_client, engine):
    seed(engine, export_client)
    found, _ = everything(export_client, "Patient/1/$everything")
    observation_id = export_client.get(f"{BASE}/Observation?subject=Patient/1").json()
    expected = {
        "Patient/1",
        "Encounter/1",
        "DocumentReference/1",
        "Procedure/1",
        "Procedure/2",
        *{f"Observation/{entry['resource']['id']}" for entry in observation_id["entry"]},
    }
    assert found == expected
    other, _ = everything(export_client, "patient/2/$everything/")
    assert "Patient/2" in other and not other & expected
    for count in ("1", "2", "4"):
        assert everything(export_client, f"Patient/1/$everything?_count={count}")[0] == expected


def test_everything_type_since_and_errors(export_client, engine):
    seed(engine, export_client)
    found, _ = everything(export_client, "Patient/1/$everything?_type=Procedure,Patient")
    assert found == {"Patient/1", "Procedure/1", "Procedure/2"}
    found, _ = everything(export_client, "Patient/1/$everything?_since=2025-01-01T00:00:00Z")
    assert "Patient/1" not in found and {"Procedure/1", "Procedure/2"} <= found
    assert export_client.get(f"{BASE}/Patient/9/$everything").status_code == 404
    for query in ("_type=Organization", "_count=0", "_cursor=x", "start=2024-01-01"):
        response = export_client.get(f"{BASE}/Patient/1/$everything?{query}")
        assert response.status_code == 400, query


def test_everything_under_a_patient_token(make_client, engine, tmp_path):
    client = make_client(CODOC_EXPORT_DIR=str(tmp_path), **AUTH_ENV)
    seed(engine, client, bearer(hs256()))
    mine = bearer(hs256("patient/*.read", patient="2"))
    found, _ = everything(client, "Patient/2/$everything", mine)
    assert "Patient/2" in found and all(item != "Patient/1" for item in found)
    assert client.get(f"{BASE}/Patient/1/$everything", headers=mine).status_code == 404
    assert count_rows(engine, dwh_data) >= 3
