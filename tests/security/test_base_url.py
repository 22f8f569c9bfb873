"""Base URL and proxies (CONTRACT 8): a forged Host or X-Forwarded-* never becomes a link."""

from __future__ import annotations

import pytest

from codoc_fhir.app import create_app
from codoc_fhir.warehouse.schema import dwh_patient
from tests.conftest import make_settings
from tests.factories import count_rows, seed_procedure_context
from tests.fhir_client import FhirTestClient
from tests.security.tokens import PATIENT_BODY as NAMED

BASE = "/v4.3.0"
PROBE = f"{BASE}/Organization?_summary=count"  # counted by the limiter (/metadata is not)
_IPPS = iter(range(1, 10_000))


def patient() -> dict:
    return {**NAMED, "identifier": [{"use": "usual", "value": f"IPP-HOST-{next(_IPPS)}"}]}


def _client(database_url: str, peer: str = "127.0.0.1", **settings: str) -> FhirTestClient:
    app = create_app(make_settings(database_url, **settings))
    return FhirTestClient(app, base_url="http://localhost:8000", client=(peer, 40000))


@pytest.fixture
def local(client, database_url, engine):  # `client` empties the tables
    with _client(database_url) as test_client:
        yield test_client


def _links(bundle: dict) -> list[str]:
    return [link["url"] for link in bundle["link"]] + [
        entry["fullUrl"] for entry in bundle.get("entry", [])
    ]


def test_a_foreign_host_is_400_and_creates_nothing(local, engine):
    response = local.post(f"{BASE}/Patient", json=patient(), headers={"Host": "evil.example"})
    assert response.status_code == 400
    assert response.json()["resourceType"] == "OperationOutcome"
    assert count_rows(engine, dwh_patient) == 0
    assert local.get(f"{BASE}/Patient", headers={"Host": "evil.example"}).status_code == 400


@pytest.mark.parametrize("host", ["localhost:8000", "127.0.0.1:9", "[::1]:8000", "LOCALHOST"])
def test_local_hosts_with_any_port_name_the_links(local, host):
    created = local.post(f"{BASE}/Patient", json=patient(), headers={"Host": host})
    assert created.status_code == 201
    assert created.headers["location"].startswith(f"http://{host}{BASE}/Patient/")
    bundle = local.get(f"{BASE}/Patient", headers={"Host": host}).json()
    assert all(url.startswith(f"http://{host}{BASE}/") for url in _links(bundle))


def test_allowed_hosts_is_a_setting(database_url, client):
    with _client(database_url, CODOC_ALLOWED_HOSTS="fhir.example.org") as configured:
        headers = {"Host": "fhir.example.org:8443"}
        assert configured.get(f"{BASE}/Patient", headers=headers).status_code == 200
        assert configured.get(f"{BASE}/Patient", headers={"Host": "[::1]"}).status_code == 400


def test_base_url_names_every_link(database_url, client, engine):
    seed_procedure_context(engine)
    public = "https://fhir.example.org/codoc"
    with _client(database_url, CODOC_BASE_URL=public) as behind:
        created = behind.post(f"{BASE}/Patient", json=patient())
        assert created.headers["location"].startswith(f"{public}{BASE}/Patient/")
        bundle = behind.get(f"{BASE}/Patient?_count=1").json()
        assert len(_links(bundle)) >= 3  # self, next, the entry
        assert all(url.startswith(f"{public}{BASE}/") for url in _links(bundle))
        batch = {
            "resourceType": "Bundle",
            "type": "batch",
            "entry": [{"request": {"method": "GET", "url": "Patient?_count=1"}}],
        }
        inner = behind.post(BASE, json=batch).json()["entry"][0]["resource"]
        assert all(url.startswith(f"{public}{BASE}/") for url in _links(inner))
        kickoff = behind.get(f"{BASE}/$export", headers={"Prefer": "respond-async"})
        assert kickoff.status_code == 202
        assert kickoff.headers["content-location"].startswith(f"{public}{BASE}/")
        # its host is allowed, so a proxy passing the public Host through is served
        assert behind.get(f"{BASE}/Patient", headers={"Host": "fhir.example.org"}).is_success


def test_forwarded_headers_of_an_untrusted_peer_are_ignored(local):
    forged = {
        "X-Forwarded-Host": "evil.example",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-For": "10.9.8.7",
    }
    created = local.post(f"{BASE}/Patient", json=patient(), headers=forged)
    assert created.status_code == 201
    assert created.headers["location"].startswith(f"http://localhost:8000{BASE}/")


def test_forwarded_headers_of_a_trusted_proxy_are_believed(database_url, client):
    settings = {"CODOC_TRUSTED_PROXIES": "10.0.0.0/8", "CODOC_ALLOWED_HOSTS": "fhir.example.org"}
    with _client(database_url, peer="10.1.2.3", **settings) as proxied:
        headers = {"X-Forwarded-Host": "fhir.example.org", "X-Forwarded-Proto": "https"}
        created = proxied.post(f"{BASE}/Patient", json=patient(), headers=headers)
        assert created.headers["location"].startswith(f"https://fhir.example.org{BASE}/")
        headers["X-Forwarded-Host"] = "evil.example"  # the proxy passed a forged host on
        assert proxied.get(f"{BASE}/Patient", headers=headers).status_code == 400


def test_the_rate_limit_identity_comes_from_trusted_proxies_only(database_url, client):
    limits = {"CODOC_RATE_LIMIT_ANONYMOUS": "2/minute"}
    with _client(database_url, **limits) as direct:
        statuses = [
            direct.get(PROBE, headers={"X-Forwarded-For": f"10.0.0.{n}"}).status_code
            for n in range(3)
        ]
        assert statuses == [200, 200, 429]
    trusted = {**limits, "CODOC_TRUSTED_PROXIES": "127.0.0.1"}
    with _client(database_url, **trusted) as proxied:
        for n in range(3):
            headers = {"X-Forwarded-For": f"10.1.0.{n}"}
            assert proxied.get(PROBE, headers=headers).status_code == 200
