"""SMART discovery and the CapabilityStatement's security (CONTRACT section 10)."""

from __future__ import annotations

from tests.security.tokens import ISSUER, SECRET

BASE = "/v4.3.0"
AUTHORIZE = "https://idp.example.org/authorize"
TOKEN = "https://idp.example.org/token"


def test_discovery_is_public_and_names_the_identity_provider(make_client):
    secured = make_client(
        CODOC_JWT_SECRET=SECRET,
        CODOC_JWT_ISSUER=ISSUER,
        CODOC_SMART_AUTHORIZE_URL=AUTHORIZE,
        CODOC_SMART_TOKEN_URL=TOKEN,
    )
    assert secured.get(f"{BASE}/Patient").status_code == 401  # auth is on
    response = secured.get(f"{BASE}/.well-known/smart-configuration")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    document = response.json()
    assert document["issuer"] == ISSUER
    assert document["authorization_endpoint"] == AUTHORIZE
    assert document["token_endpoint"] == TOKEN
    assert "patient/*.read" in document["scopes_supported"]
    assert {"permission-v1", "permission-v2"} <= set(document["capabilities"])
    security = secured.get(f"{BASE}/metadata").json()["rest"][0]["security"]
    assert security["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
    uris = {item["url"]: item["valueUri"] for item in security["extension"][0]["extension"]}
    assert uris == {"authorize": AUTHORIZE, "token": TOKEN}


def test_without_auth_there_is_no_security_section(client):
    statement = client.get(f"{BASE}/metadata").json()
    assert "security" not in statement["rest"][0]
    assert client.get(f"{BASE}/.well-known/smart-configuration").status_code == 200
