"""History under tokens: scopes, patient-scoped tokens (CONTRACT sections 8 and 10)."""

from __future__ import annotations

import pytest

from tests.factories import make_patient, seed_procedure_context
from tests.security.tokens import SECRET, bearer, hs256

BASE = "/v4.3.0"


def procedure(patient: int) -> dict:
    return {
        "resourceType": "Procedure",
        "status": "completed",
        "code": {"coding": [{"code": "COLO001"}]},
        "subject": {"reference": f"Patient/{patient}"},
        "performedDateTime": "2024-01-15T14:00:00Z",
    }


@pytest.fixture
def secured(make_client, engine):
    """Procedure/1 is patient 1's, Procedure/2 patient 2's (deleted)."""
    seed_procedure_context(engine)
    make_patient(engine, lastname="Other")
    client = make_client(CODOC_JWT_SECRET=SECRET)
    admin = bearer(hs256("system/*.*"))  # minted now: module-level tokens expire in long runs
    for patient in (1, 2):
        assert (
            client.post(f"{BASE}/Procedure", json=procedure(patient), headers=admin).status_code
            == 201
        )
    assert client.delete(f"{BASE}/Procedure/2", headers=admin).status_code == 204
    return client


def test_a_patient_token_sees_only_its_patients_versions(secured):
    own = bearer(hs256("patient/*.read", patient="1"))
    assert secured.get(f"{BASE}/Procedure/1/_history", headers=own).json()["total"] == 1
    assert secured.get(f"{BASE}/Procedure/1/_history/1", headers=own).status_code == 200
    assert secured.get(f"{BASE}/Procedure/2/_history", headers=own).status_code == 404
    assert secured.get(f"{BASE}/Procedure/2/_history/1", headers=own).status_code == 404
    typed = secured.get(f"{BASE}/Procedure/_history", headers=own).json()
    assert {entry["fullUrl"].rsplit("/", 1)[-1] for entry in typed["entry"]} == {"1"}
    everything = secured.get(f"{BASE}/_history", headers=own).json()
    assert {entry["fullUrl"].rsplit("/", 1)[-1] for entry in everything["entry"]} == {"1"}


def test_history_needs_a_read_scope_and_system_history_a_wildcard(secured):
    writer = bearer(hs256("user/Procedure.cud"))
    assert secured.get(f"{BASE}/Procedure/1/_history", headers=writer).status_code == 403
    assert secured.get(f"{BASE}/Procedure/1/_history/1", headers=writer).status_code == 403
    reader = bearer(hs256("user/Procedure.rs"))
    assert secured.get(f"{BASE}/Procedure/_history", headers=reader).json()["total"] == 3
    assert secured.get(f"{BASE}/_history", headers=reader).status_code == 403
    assert secured.get(f"{BASE}/_history", headers=bearer(hs256("user/*.read"))).status_code == 200
    assert secured.get(f"{BASE}/Procedure/1/_history").status_code == 401
