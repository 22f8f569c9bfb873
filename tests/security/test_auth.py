"""Bearer auth: 401 for missing or bad tokens, 403 for missing scopes, /metadata public."""

from __future__ import annotations

import time

import pytest

from codoc_fhir.api.auth import Grant, parse_scope
from codoc_fhir.warehouse.schema import dwh_data, dwh_patient
from tests.factories import count_rows, seed_procedure_context
from tests.security.tokens import (
    AUDIENCE,
    AUTH_ENV,
    ISSUER,
    PATIENT_BODY,
    bearer,
    hs256,
    public_pem,
    rs256,
    write_jwks,
)

PROCEDURE = {
    "resourceType": "Procedure",
    "status": "completed",
    "code": {"coding": [{"code": "COLO001", "display": "Colonoscopy"}]},
    "subject": {"reference": "Patient/1"},
    "performedDateTime": "2024-01-15T14:00:00Z",
}


@pytest.fixture
def secured(make_client, engine):
    seed_procedure_context(engine)
    return make_client(**AUTH_ENV)


def test_auth_is_off_by_default(client, engine):
    seed_procedure_context(engine)
    assert client.get("/v4.3.0/Patient/1").status_code == 200


@pytest.mark.parametrize(
    "headers, reason",
    [
        ({}, "Authentication required"),
        ({"Authorization": "Basic YWxpY2U6c2VjcmV0"}, "Authentication required"),
        (bearer("not.a.jwt"), "invalid"),
        (bearer(hs256(secret="another-secret-0123456789-0123456789")), "invalid"),
        (bearer(hs256(exp=int(time.time()) - 3600)), "expired"),
        (bearer(hs256(aud="someone-else")), "audience"),
        (bearer(hs256(iss="https://evil.example.org")), "issuer"),
        (bearer(hs256(sub=None)), "'sub'"),
    ],
    ids=["none", "basic", "garbage", "bad-signature", "expired", "audience", "issuer", "no-sub"],
)
def test_bad_or_missing_token_is_401_login(secured, headers, reason):
    response = secured.get("/v4.3.0/Patient/1", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    issue = response.json()["issue"][0]
    assert issue["code"] == "login"
    assert reason in issue["diagnostics"]


def test_unsigned_alg_none_token_is_rejected(secured):
    import jwt

    from tests.security.tokens import claims

    token = jwt.encode(claims(), key=None, algorithm="none")
    assert secured.get("/v4.3.0/Patient/1", headers=bearer(token)).status_code == 401


def test_metadata_and_docs_stay_public(secured):
    assert secured.get("/v4.3.0/metadata").status_code == 200
    assert secured.get("/v4.3.0/metadata/").status_code == 200
    assert secured.get("/openapi.json").status_code == 200
    assert secured.get("/docs").status_code == 200


def test_valid_token_reads_and_writes(secured, engine):
    token = hs256("system/*.read system/Procedure.write")
    assert secured.get("/v4.3.0/Patient/1", headers=bearer(token)).status_code == 200
    created = secured.post("/v4.3.0/procedure/", json=PROCEDURE, headers=bearer(token))
    assert created.status_code == 201
    assert count_rows(engine, dwh_data) == 1


def test_missing_scope_is_403_forbidden_and_stores_nothing(secured, engine):
    token = hs256("user/Procedure.read")
    response = secured.post("/v4.3.0/procedure/", json=PROCEDURE, headers=bearer(token))
    assert response.status_code == 403
    assert response.json()["issue"][0]["code"] == "forbidden"
    assert count_rows(engine, dwh_data) == 0
    assert secured.get("/v4.3.0/Patient/1", headers=bearer(token)).status_code == 403
    assert secured.delete("/v4.3.0/Patient/1", headers=bearer(token)).status_code == 403
    assert count_rows(engine, dwh_patient) == 1


def test_v2_scopes_split_read_and_search(secured, engine):
    token = hs256("user/Patient.s user/Procedure.cud")
    assert secured.get("/v4.3.0/Patient/1", headers=bearer(token)).status_code == 403
    created = secured.post("/v4.3.0/Procedure", json=PROCEDURE, headers=bearer(token))
    assert created.status_code == 201
    assert secured.get("/v4.3.0/Procedure/1", headers=bearer(token)).status_code == 403


@pytest.mark.parametrize(
    "text, expected",
    [
        ("system/Procedure.read", Grant("system", "Procedure", "rs")),
        ("user/*.write", Grant("user", "*", "cud")),
        ("patient/*.*", Grant("patient", "*", "cruds")),
        ("patient/Observation.rs", Grant("patient", "Observation", "rs")),
        ("user/Patient.cruds?name=x", Grant("user", "Patient", "cruds")),
        ("openid", None),
        ("user/Patient.sr", None),
        ("admin/Patient.read", None),
    ],
)
def test_scope_parsing(text, expected):
    assert parse_scope(text) == expected


def test_rs256_with_pem_public_key(make_client, engine):
    seed_procedure_context(engine)
    client = make_client(
        CODOC_JWT_PUBLIC_KEY=public_pem(), CODOC_JWT_ISSUER=ISSUER, CODOC_JWT_AUDIENCE=AUDIENCE
    )
    assert client.get("/v4.3.0/Patient/1", headers=bearer(rs256())).status_code == 200
    assert client.get("/v4.3.0/Patient/1", headers=bearer(hs256())).status_code == 401


def test_rs256_with_jwks_file(make_client, engine, tmp_path):
    seed_procedure_context(engine)
    jwks = write_jwks(tmp_path / "jwks.json", kid="key-1")
    client = make_client(CODOC_JWT_JWKS_FILE=str(jwks), CODOC_JWT_AUDIENCE=AUDIENCE)
    ok = client.get("/v4.3.0/Patient/1", headers=bearer(rs256(kid="key-1")))
    assert ok.status_code == 200
    unknown_kid = client.get("/v4.3.0/Patient/1", headers=bearer(rs256(kid="other")))
    assert unknown_kid.status_code == 401


def test_patient_create_needs_write_scope(secured, engine):
    token = hs256("user/Patient.read")
    response = secured.post("/v4.3.0/patient/", json=PATIENT_BODY, headers=bearer(token))
    assert response.status_code == 403
    assert count_rows(engine, dwh_patient) == 1
