"""REST conventions every resource shares (CONTRACT section 3)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from codoc_fhir.warehouse.schema import dwh_data
from tests.factories import seed_procedure_context
from tests.resources.test_procedure import SEED_PROCEDURE


@pytest.fixture
def context(engine):
    return seed_procedure_context(engine)


def _issue(response) -> dict:
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    return body["issue"][0]


def test_metadata_describes_the_server(client):
    for path in ("/v4.3.0/metadata", "/v4.3.0/metadata/"):
        response = client.get(path)
        assert response.status_code == 200
        statement = response.json()
        assert statement["fhirVersion"] == "4.3.0"
        assert statement["kind"] == "instance"
        types = {entry["type"] for entry in statement["rest"][0]["resource"]}
        assert "Procedure" in types


def test_r5_answers_501(client):
    response = client.get("/v5.0.0/procedure/1/")
    assert response.status_code == 501
    assert "R5" in _issue(response)["diagnostics"]


def test_unknown_path_is_404_outcome(client):
    response = client.get("/v4.3.0/nothing-here/1/")
    assert response.status_code == 404
    assert _issue(response)["code"] == "not-found"


def test_unsupported_method_is_405_outcome(client):
    response = client.post("/v4.3.0/procedure/1/", json=SEED_PROCEDURE)
    assert response.status_code == 405
    assert _issue(response)["code"] == "not-supported"


@pytest.mark.parametrize(
    "content_type",
    ["application/xml", "text/plain", "application/x-www-form-urlencoded", ""],
)
def test_other_media_types_are_415(client, context, engine, content_type):
    headers = {"content-type": content_type} if content_type else {}
    response = client.post("/v4.3.0/procedure/", content=b"{}", headers=headers)
    assert response.status_code == 415
    assert _issue(response)["code"] == "not-supported"


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/fhir+json", "application/fhir+json; charset=utf-8"],
)
def test_json_media_types_are_accepted(client, context, content_type):
    import orjson

    response = client.post(
        "/v4.3.0/procedure",
        content=orjson.dumps(SEED_PROCEDURE),
        headers={"content-type": content_type},
    )
    assert response.status_code == 201


def test_format_xml_is_406(client, context):
    client.post("/v4.3.0/procedure/", json=SEED_PROCEDURE)
    assert client.get("/v4.3.0/procedure/1/?_format=xml").status_code == 406
    assert client.get("/v4.3.0/procedure/1/?_format=json").status_code == 200


def test_answer_media_type_follows_accept(client, context):
    client.post("/v4.3.0/procedure/", json=SEED_PROCEDURE)
    plain = client.get("/v4.3.0/procedure/1/", headers={"accept": "application/json"})
    assert plain.headers["content-type"].startswith("application/json")
    fhir = client.get("/v4.3.0/procedure/1/")
    assert fhir.headers["content-type"].startswith("application/fhir+json")


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        (b"{not json", "Invalid JSON"),
        (b"[1, 2]", "JSON object"),
        (b"", "empty"),
        (b"[" * 200 + b"]" * 200, "nested"),
        (b'"just a string"', "JSON object"),
    ],
)
def test_bad_json_is_400(client, context, engine, raw, needle):
    response = client.post(
        "/v4.3.0/procedure/", content=raw, headers={"content-type": "application/fhir+json"}
    )
    assert response.status_code == 400
    assert needle in _issue(response)["diagnostics"]
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(dwh_data)).scalar_one() == 0


def test_body_over_the_limit_is_413(make_client, engine):
    seed_procedure_context(engine)
    small = make_client(CODOC_MAX_BODY_BYTES="1000")
    padded = dict(SEED_PROCEDURE, code={"coding": [{"code": "X", "display": "y" * 2000}]})
    response = small.post("/v4.3.0/procedure/", json=padded)
    assert response.status_code == 413
    assert _issue(response)["code"] == "too-costly"


def test_id_in_post_body_is_ignored(client, context):
    response = client.post("/v4.3.0/procedure/", json=dict(SEED_PROCEDURE, id="42"))
    assert response.status_code == 201
    assert response.json()["id"] == "1"


def test_references_accept_case_and_url_forms(client, context):
    for reference in ("patient/1", "Patient/1", "http://elsewhere.example/fhir/Patient/1"):
        body = dict(SEED_PROCEDURE, subject={"reference": reference})
        response = client.post("/v4.3.0/procedure/", json=body)
        assert response.status_code == 201, response.text
        assert response.json()["subject"] == {"reference": "Patient/1"}


def test_non_numeric_id_is_404_not_500(client):
    for ident in ("abc", "1.5", "99999999999999999999999", "-1", "\u00b2", "\u0661"):
        assert client.get(f"/v4.3.0/procedure/{ident}/").status_code == 404
        assert client.get(f"/v4.3.0/organization/unit-{ident}/").status_code == 404


def test_non_ascii_digits_in_queries_are_4xx_not_500(client):
    for path in (
        "/v4.3.0/Patient/\u00b2/Procedure",
        "/v4.3.0/Procedure?_count=\u00b2",
        "/v4.3.0/Patient?organization=Organization/unit-\u00b2",
        "/v4.3.0/Patient/\u00b2/$everything",
        "/v4.3.0/Patient/1/$everything?_count=\u00b2",
    ):
        status = client.get(path).status_code
        assert status < 500, path


def test_prefer_return_minimal(client, context):
    response = client.post(
        "/v4.3.0/procedure/", json=SEED_PROCEDURE, headers={"prefer": "return=minimal"}
    )
    assert response.status_code == 201
    assert response.content == b""
    assert response.headers["location"].endswith("/Procedure/1")


def test_last_modified_and_etag_on_read(client, context):
    client.post("/v4.3.0/procedure/", json=SEED_PROCEDURE)
    response = client.get("/v4.3.0/procedure/1/")
    assert response.headers["etag"] == 'W/"1"'
    assert response.headers["last-modified"].endswith("GMT")


def test_delete_with_stale_if_match_is_412_and_keeps_the_row(client, context, engine):
    client.post("/v4.3.0/procedure/", json=SEED_PROCEDURE)
    response = client.delete("/v4.3.0/procedure/1/", headers={"If-Match": 'W/"5"'})
    assert response.status_code == 412
    assert client.get("/v4.3.0/procedure/1/").status_code == 200


def test_values_too_long_for_their_column_are_400_never_500(client, context, engine):
    too_long_id = dict(SEED_PROCEDURE, identifier=[{"value": "x" * 400}])
    response = client.post("/v4.3.0/procedure/", json=too_long_id)
    assert response.status_code == 400
    huge_display = dict(SEED_PROCEDURE, code={"coding": [{"code": "Z", "display": "d" * 3000}]})
    response = client.post("/v4.3.0/procedure/", json=huge_display)
    if engine.dialect.name == "postgresql":
        assert response.status_code == 400
        assert "does not fit" in _issue(response)["diagnostics"]
    else:  # SQLite does not enforce VARCHAR lengths: the text is kept whole
        assert response.status_code == 201
        assert response.json()["code"]["coding"][0]["display"] == "d" * 3000
