"""Every resource in every answer passes the checks of a direct read (CONTRACT section 8).

Included and revincluded resources, `$everything` and Bundle entries are checked against
the token's scopes and patient restriction of their own type: a resource the token may
not read is left out, never answered. Each answer is also re-read resource by resource
with the same token, which must succeed.
"""

from __future__ import annotations

import pytest

from codoc_fhir.warehouse.schema import dwh_patient, dwh_patient_ipphist
from tests.factories import count_rows, make_document, make_patient, seed_procedure_context
from tests.security.tokens import AUTH_ENV, bearer, hs256

BASE = "/v4.3.0"
ADMIN = bearer(hs256("system/*.*", sub="loader"))


def procedure_for(patient: int) -> dict:
    return {
        "resourceType": "Procedure",
        "status": "completed",
        "code": {"coding": [{"code": "COLO001", "display": "Colonoscopy"}]},
        "subject": {"reference": f"Patient/{patient}"},
        "performedDateTime": "2024-01-15T14:00:00Z",
        "performer": [{"actor": {"reference": "Organization/department-1"}}],
    }


@pytest.fixture
def secured(make_client, engine):
    """Patients 1 and 2, each with one Procedure and one DocumentReference."""
    seed_procedure_context(engine)
    make_patient(engine, lastname="Other", firstname="Bob", ipp="IPP-OTHER")
    for patient in (1, 2):
        make_document(engine, patient_num=patient, text=f"<p>secret note of {patient}</p>")
    client = make_client(**AUTH_ENV)
    for patient in (1, 2):
        response = client.post(f"{BASE}/Procedure", json=procedure_for(patient), headers=ADMIN)
        assert response.status_code == 201
    return client


def entries(bundle: dict) -> list[dict]:
    return [entry["resource"] for entry in bundle.get("entry") or []]


def kinds(bundle: dict) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for resource in entries(bundle):
        found.setdefault(resource["resourceType"], set()).add(resource["id"])
    return found


def subjects(resources: list[dict], fhir_type: str) -> set[str]:
    return {r["subject"]["reference"] for r in resources if r["resourceType"] == fhir_type}


def assert_each_directly_readable(client, resources: list[dict], token: dict) -> None:
    for resource in resources:
        path = f"{BASE}/{resource['resourceType']}/{resource['id']}"
        assert client.get(path, headers=token).status_code == 200, path


def search(client, query: str, token: dict) -> dict:
    response = client.get(f"{BASE}/{query}", headers=token)
    assert response.status_code == 200, response.text
    return response.json()


def test_revinclude_needs_the_scope_of_the_included_type(secured):
    query = "Patient?_revinclude=DocumentReference:subject"
    assert "DocumentReference" in kinds(search(secured, query, ADMIN))  # there is one to leak
    token = bearer(hs256("user/Patient.read"))
    answer = search(secured, query, token)
    assert set(kinds(answer)) == {"Patient"}
    assert "secret note" not in str(answer)
    assert_each_directly_readable(secured, entries(answer), token)


def test_include_needs_the_scope_of_the_included_type(secured):
    query = "Procedure?_include=Procedure:subject&_include=Procedure:performer"
    assert {"Patient", "Organization"} <= set(kinds(search(secured, query, ADMIN)))
    token = bearer(hs256("user/Procedure.read"))
    answer = search(secured, query, token)
    assert set(kinds(answer)) == {"Procedure"}
    assert len(entries(answer)) == 2
    assert_each_directly_readable(secured, entries(answer), token)


@pytest.mark.parametrize(
    "scope",
    ["patient/*.read", "user/Patient.read patient/Procedure.read", "user/*.read patient/*.read"],
)
def test_revinclude_keeps_the_patient_restriction_of_the_included_type(secured, scope):
    token = bearer(hs256(scope, patient="1"))
    answer = search(secured, "Patient?_revinclude=Procedure:subject", token)
    procedures = [r for r in entries(answer) if r["resourceType"] == "Procedure"]
    if scope.startswith("user/*.read"):  # a user grant on every type: not restricted
        assert subjects(procedures, "Procedure") == {"Patient/1", "Patient/2"}
    else:
        assert subjects(procedures, "Procedure") == {"Patient/1"}
    assert_each_directly_readable(secured, entries(answer), token)


def test_batch_search_entry_keeps_included_resources_in_scope(secured):
    token = bearer(hs256("user/Patient.read patient/Procedure.read", patient="1"))
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"request": {"method": "GET", "url": "Patient?_revinclude=Procedure:subject"}},
            {"request": {"method": "GET", "url": "Patient?_revinclude=DocumentReference:subject"}},
            {"request": {"method": "GET", "url": "Procedure/2"}},
        ],
    }
    response = secured.post(f"{BASE}/", json=bundle, headers=token)
    assert response.status_code == 200
    first, second, direct = response.json()["entry"]
    procedures = [r for r in entries(first["resource"]) if r["resourceType"] == "Procedure"]
    assert subjects(procedures, "Procedure") == {"Patient/1"}
    assert set(kinds(second["resource"])) == {"Patient"}
    assert direct["response"]["status"].startswith("404")
    assert_each_directly_readable(secured, entries(first["resource"]), token)


def test_transaction_search_entry_keeps_included_resources_in_scope(secured):
    token = bearer(hs256("user/Patient.read patient/Procedure.read", patient="1"))
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"request": {"method": "GET", "url": "Patient?_revinclude=Procedure:subject"}}],
    }
    response = secured.post(f"{BASE}/", json=bundle, headers=token)
    assert response.status_code == 200
    found = entries(response.json()["entry"][0]["resource"])
    assert subjects([r for r in found if r["resourceType"] == "Procedure"], "Procedure") == {
        "Patient/1"
    }


def test_everything_leaves_out_types_and_rows_the_token_cannot_read(secured):
    full = secured.get(f"{BASE}/Patient/1/$everything", headers=ADMIN).json()
    assert {"Procedure", "DocumentReference"} <= set(kinds(full))
    token = bearer(hs256("user/Patient.read user/Procedure.read"))
    answer = secured.get(f"{BASE}/Patient/1/$everything", headers=token)
    assert answer.status_code == 200
    assert set(kinds(answer.json())) == {"Patient", "Procedure"}
    assert answer.json()["total"] == len(entries(answer.json()))
    assert_each_directly_readable(secured, entries(answer.json()), token)
    confined = bearer(hs256("patient/*.read", patient="1"))
    assert secured.get(f"{BASE}/Patient/2/$everything", headers=confined).status_code == 404


def test_patient_scoped_create_colliding_with_another_patients_ipp_is_403(secured, engine):
    token = bearer(hs256("patient/*.*", patient="1"))
    body = {
        "resourceType": "Patient",
        "identifier": [{"use": "usual", "system": "HIS", "value": "IPP-OTHER"}],
        "name": [{"family": "Smith", "given": ["John"]}],
        "gender": "male",
        "birthDate": "1980-05-15",
    }
    before = count_rows(engine, dwh_patient, dwh_patient_ipphist)
    admin = secured.post(f"{BASE}/Patient", json=body, headers=ADMIN)
    assert admin.status_code == 409  # an unrestricted caller is told why
    for response in (
        secured.post(f"{BASE}/Patient", json=body, headers=token),
        secured.put(f"{BASE}/Patient/1", json=body | {"id": "1"}, headers=token),
    ):
        assert response.status_code == 403
        outcome = response.json()
        assert outcome["resourceType"] == "OperationOutcome"
        assert outcome["issue"][0]["code"] == "forbidden"
        assert "Patient 2" not in response.text and "IPP-OTHER" not in response.text
    assert count_rows(engine, dwh_patient, dwh_patient_ipphist) == before
    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [{"resource": body, "request": {"method": "POST", "url": "Patient"}}],
    }
    answer = secured.post(f"{BASE}/", json=batch, headers=token).json()
    assert answer["entry"][0]["response"]["status"].startswith("403")
    assert "Patient 2" not in str(answer)
    assert count_rows(engine, dwh_patient, dwh_patient_ipphist) == before


def test_include_keeps_the_patient_restriction_of_the_included_type(secured):
    token = bearer(hs256("user/Procedure.read patient/Patient.read", patient="1"))
    answer = search(secured, "Procedure?_include=Procedure:subject", token)
    assert len([r for r in entries(answer) if r["resourceType"] == "Procedure"]) == 2
    assert kinds(answer)["Patient"] == {"1"}
    assert_each_directly_readable(secured, entries(answer), token)
