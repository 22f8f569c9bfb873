"""Search on Procedure: every parameter type, modifier, prefix and result parameter."""

from __future__ import annotations

import pytest

from tests.factories import make_patient, seed_procedure_context
from tests.search.helpers import at, fact, ids, link

URL = "/v4.3.0/Procedure"


@pytest.fixture
def facts(client, engine):
    """Five procedures of two patients (ids 1..5) and one prescription (id 6)."""
    context = seed_procedure_context(engine)
    other = make_patient(engine, lastname="Martin", firstname="Héloïse", sex="F")
    p1, stay = context["patient"], context["stay"]
    fact(
        engine,
        patient_num=p1,
        when=at("2024-01-10T08:00:00Z"),
        stay_num=stay,
        department_num=context["department"],
        id_source="SRC-1",
    )
    fact(
        engine,
        patient_num=p1,
        when=at("2024-01-15T14:00:00Z"),
        code="ECHO002",
        unit_num=context["unit"],
    )
    fact(engine, patient_num=p1, when=at("2024-02-01T00:00:00Z"), stay_num=stay)
    fact(engine, patient_num=other, when=at("2024-01-15T23:59:59Z"), code="ECHO002")
    fact(engine, patient_num=other, when=at("2023-12-31T23:00:00Z"))
    fact(engine, patient_num=p1, when=at("2024-01-15T10:00:00Z"), thesaurus="Prescription")
    return {**context, "other": other}


def search(client, query: str, status: int = 200, **kwargs) -> dict:
    response = client.get(f"{URL}?{query}" if query else URL, **kwargs)
    assert response.status_code == status, response.text
    return response.json()


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["1", "2", "3", "4", "5"]),
        ("code=COLO001", ["1", "3", "5"]),
        ("code=urn:codoc:fhir:codesystem:Acte|ECHO002", ["2", "4"]),
        ("code=urn:codoc:fhir:codesystem:Other|ECHO002", []),
        ("code=|ECHO002", []),
        ("code=urn:codoc:fhir:codesystem:Acte|", ["1", "2", "3", "4", "5"]),
        ("code:not=COLO001", ["2", "4"]),
        ("code=COLO001,ECHO002", ["1", "2", "3", "4", "5"]),
        ("code=NOPE", []),
        ("identifier=SRC-1", ["1"]),
        ("identifier=2", ["2"]),
        ("identifier=HIS|SRC-1", []),
        ("identifier:missing=false", ["1"]),
        ("identifier:not=SRC-1", ["2", "3", "4", "5"]),
        ("_id=2,4", ["2", "4"]),
        ("_id=6", []),
        ("_id:not=1", ["2", "3", "4", "5"]),
    ],
)
def test_token_forms(client, facts, query, expected):
    assert ids(search(client, query)) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("subject=Patient/1", ["1", "2", "3"]),
        ("subject=1", ["1", "2", "3"]),
        ("subject=http://elsewhere.example/fhir/Patient/2", ["4", "5"]),
        ("subject:Patient=2", ["4", "5"]),
        ("patient=Patient/2", ["4", "5"]),
        ("subject=Patient/1,Patient/2", ["1", "2", "3", "4", "5"]),
        ("subject=Organization/1", []),
        ("encounter=Encounter/1", ["1", "3"]),
        ("encounter=Encounter/movement-1", []),
        ("encounter:missing=true", ["2", "4", "5"]),
        ("encounter:missing=false", ["1", "3"]),
        ("performer=Organization/department-1", ["1"]),
        ("performer=Organization/unit-1", ["2"]),
        ("performer=Organization/department-1,Organization/unit-1", ["1", "2"]),
        ("performer:missing=true", ["3", "4", "5"]),
    ],
)
def test_reference_forms(client, facts, query, expected):
    assert ids(search(client, query)) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("date=2024-01-15", ["2", "4"]),
        ("date=eq2024-01-15", ["2", "4"]),
        ("date=2024-01", ["1", "2", "4"]),
        ("date=2024", ["1", "2", "3", "4"]),
        ("date=2023", ["5"]),
        ("date=ne2024-01", ["3", "5"]),
        ("date=gt2024-01-15", ["3"]),
        ("date=sa2024-01-15", ["3"]),
        ("date=lt2024-01-15", ["1", "5"]),
        ("date=eb2024-01-15", ["1", "5"]),
        ("date=ge2024-01-15", ["2", "3", "4"]),
        ("date=le2024-01-15", ["1", "2", "4", "5"]),
        ("date=2024-01-15T14:00", ["2"]),
        ("date=2024-01-15T14:00:00Z", ["2"]),
        ("date=2024-01-15T16:00:00+02:00", ["2"]),
        ("date=gt2024-01-15T14:00:00Z", ["3", "4"]),
        ("date=ap2024-01-15", ["1", "2", "3", "4", "5"]),  # 10% of the distance to now
        ("date=ap2020-01-01", []),
        ("date=ge2024-01-10&date=lt2024-02", ["1", "2", "4"]),
        ("date=2023,2024-02", ["3", "5"]),
        ("_lastUpdated=2024-01-01", ["1", "2", "3", "4", "5"]),
        ("_lastUpdated=gt2024-01-01", []),
    ],
)
def test_date_prefixes_and_partial_dates(client, facts, query, expected):
    assert ids(search(client, query)) == expected


def test_repeated_parameters_are_and_ed(client, facts):
    assert ids(search(client, "subject=Patient/1&code=ECHO002")) == ["2"]
    assert ids(search(client, "code=COLO001&code=ECHO002")) == []


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("_sort=date", ["5", "1", "2", "4", "3"]),
        ("_sort=-date", ["3", "4", "2", "1", "5"]),
        ("_sort=-_id", ["5", "4", "3", "2", "1"]),
        ("_sort=patient,-date", ["3", "2", "1", "4", "5"]),
        ("_sort=encounter,_id", ["2", "4", "5", "1", "3"]),
    ],
)
def test_sort(client, facts, query, expected):
    assert ids(search(client, query)) == expected


def test_count_and_paging_links(client, facts):
    first = search(client, "_sort=date&_count=2")
    assert first["total"] == 5
    assert ids(first) == ["5", "1"]
    assert link(first, "self") == "http://testserver/v4.3.0/Procedure?_sort=date&_count=2"
    assert link(first, "previous") is None
    second = client.get(link(first, "next")).json()
    assert ids(second) == ["2", "4"]
    third = client.get(link(second, "next")).json()
    assert ids(third) == ["3"]
    assert link(third, "next") is None
    back = client.get(link(third, "previous")).json()
    assert ids(back) == ["2", "4"]
    assert ids(client.get(link(back, "previous")).json()) == ["5", "1"]


def test_links_keep_the_request_host_and_path(make_client, facts):
    client = make_client(CODOC_ALLOWED_HOSTS="fhir.example.org")  # else the Host is a 400
    bundle = search(client, "_count=1", headers={"host": "fhir.example.org:8443"})
    assert link(bundle, "self").startswith("http://fhir.example.org:8443/v4.3.0/Procedure?")
    assert link(bundle, "next").startswith("http://fhir.example.org:8443/v4.3.0/Procedure?")
    entry = bundle["entry"][0]
    assert entry["fullUrl"] == "http://fhir.example.org:8443/v4.3.0/Procedure/1"
    assert entry["search"] == {"mode": "match"}


def test_codoc_path_and_post_search(client, facts):
    for path in ("/v4.3.0/procedure/", "/v4.3.0/procedure", "/v4.3.0/Procedure/"):
        bundle = client.get(path, params={"code": "ECHO002"}).json()
        assert ids(bundle) == ["2", "4"], path
    response = client.post(
        "/v4.3.0/Procedure/_search",
        content="code=ECHO002&subject=Patient%2F2",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200
    assert ids(response.json()) == ["4"]
    assert link(response.json(), "self") == (
        "http://testserver/v4.3.0/Procedure?code=ECHO002&subject=Patient%2F2"
    )
    bad = client.post("/v4.3.0/procedure/_search", json={"code": "x"})
    assert bad.status_code == 415


def test_summary_count_and_total_none(client, facts):
    counted = search(client, "code=COLO001&_summary=count")
    assert counted["total"] == 3
    assert "entry" not in counted
    untotalled = search(client, "_total=none&_count=2")
    assert "total" not in untotalled
    assert ids(untotalled) == ["1", "2"]
    assert search(client, "_count=0")["total"] == 5


def test_count_is_capped(client, facts):
    bundle = search(client, "_count=5000")
    assert len(bundle["entry"]) == 5


def test_elements_keeps_mandatory_and_tags_subsetted(client, facts):
    bundle = search(client, "_id=1&_elements=code,performed")
    resource = bundle["entry"][0]["resource"]
    assert set(resource) == {
        "resourceType",
        "id",
        "meta",
        "code",
        "performedDateTime",
        "status",
        "subject",
    }
    assert {
        "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
        "code": "SUBSETTED",
        "display": "subsetted",
    } in resource["meta"]["tag"]


def test_include_and_revinclude(client, facts):
    bundle = search(client, "_id=1,2&_include=Procedure:subject&_include=Procedure:performer")
    assert ids(bundle) == ["1", "2"]
    included = {
        (e["resource"]["resourceType"], e["resource"]["id"])
        for e in bundle["entry"]
        if e["search"]["mode"] == "include"
    }
    assert included == {
        ("Patient", "1"),
        ("Organization", "department-1"),
        ("Organization", "unit-1"),
    }
    encounters = search(client, "_id=1,3&_include=Procedure:encounter")
    assert ids(encounters, "include") == ["1"]
    patients = client.get("/v4.3.0/Patient?_id=2&_revinclude=Procedure:subject").json()
    assert ids(patients) == ["2"]
    assert sorted(ids(patients, "include")) == ["4", "5"]


def test_compartment_search(client, facts):
    for path in ("/v4.3.0/Patient/2/Procedure", "/v4.3.0/patient/2/procedure/"):
        bundle = client.get(path, params={"_sort": "date"}).json()
        assert ids(bundle) == ["5", "4"], path
        assert bundle["total"] == 2
    narrowed = client.get("/v4.3.0/Patient/1/Procedure", params={"code": "ECHO002"}).json()
    assert ids(narrowed) == ["2"]
    assert ids(client.get("/v4.3.0/Patient/999/Procedure").json()) == []
    assert ids(client.get("/v4.3.0/Patient/abc/Procedure").json()) == []


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("unknown=1", "not-supported"),
        ("code:contains=COLO", "not-supported"),
        ("subject.organization.name=Smith", "not-supported"),  # chains go one level deep
        ("_sort=unknown", "not-supported"),
        ("_include=Procedure:code", "not-supported"),
        ("_summary=everything", "not-supported"),
        ("date=2024-13-45", "invalid"),
        ("date=yesterday", "invalid"),
        ("_count=-1", "invalid"),
        ("_total=maybe", "invalid"),
        ("code=", "invalid"),
        ("encounter:missing=perhaps", "invalid"),
        ("_cursor=garbage", "invalid"),
    ],
)
def test_bad_searches_are_400(client, facts, query, code):
    outcome = search(client, query, status=400)
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == code


def test_lenient_handling_ignores_unknown_parameters(client, facts):
    bundle = search(
        client,
        "unknown=1&code=ECHO002&code:contains=X&_sort=nothing",
        headers={"prefer": "handling=lenient"},
    )
    assert ids(bundle) == ["2", "4"]
    assert link(bundle, "self") == "http://testserver/v4.3.0/Procedure?code=ECHO002"
    assert search(client, "date=nonsense", status=400, headers={"prefer": "handling=lenient"})


def test_cursor_of_another_sort_is_refused(client, facts):
    first = search(client, "_sort=date&_count=1")
    token = link(first, "next").split("_cursor=")[1]
    outcome = search(client, f"_sort=-date&_count=1&_cursor={token}", status=400)
    assert "another sort" in outcome["issue"][0]["diagnostics"]
