"""Patient: the documented payloads (api/patient.md, quickstart, the patient-record guide),
multi-IPP, death, merges, contact copies, delete blocking and the demo data set."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from codoc_fhir.demo import load_demo
from codoc_fhir.warehouse.db import write_transaction
from codoc_fhir.warehouse.schema import (
    dwh_data,
    dwh_patient,
    dwh_patient_ipphist,
    dwh_patient_mvt,
    dwh_thesaurus,
    dwh_thesaurus_data,
)
from tests.conftest import make_settings
from tests.factories import (
    count_rows,
    make_department,
    make_document,
    make_site,
    make_stay,
    make_unit,
)

PATIENT = "/v4.3.0/patient/"

# api/patient.md "Create a Patient"
DOC_PATIENT = {
    "resourceType": "Patient",
    "identifier": [{"use": "usual", "value": "IPP123456"}],
    "name": [{"family": "Smith", "given": ["John", "Peter"]}],
    "gender": "male",
    "birthDate": "1980-05-15",
    "managingOrganization": {"reference": "Organization/department-1"},
}
# getting-started/quickstart.md step 2
QUICKSTART_PATIENT = {
    "resourceType": "Patient",
    "identifier": [{"use": "usual", "value": "123456789"}],
    "name": [{"family": "Smith", "given": ["John", "Michael"]}],
    "gender": "male",
    "birthDate": "1980-05-15",
}
# api/patient.md "Multi-IPP"
MULTI_IPP = {
    "resourceType": "Patient",
    "identifier": [
        {"use": "official", "value": "123"},
        {"use": "usual", "value": "IPP123456"},
        {"use": "usual", "value": "IPP_OLD_789"},
    ],
    "name": [{"family": "Smith", "given": ["John"]}],
    "gender": "male",
    "birthDate": "1980-05-15",
}
# api/patient.md "Create an Anonymous Patient"
ANONYMOUS = {
    "resourceType": "Patient",
    "identifier": [{"value": "ANON_001"}],
    "name": [{"family": "Anonymous", "given": ["Patient"]}],
    "gender": "unknown",
    "birthDate": "1970-01-01",
}
# api/patient.md "Patient with Phone and Address"
WITH_CONTACT = {
    "resourceType": "Patient",
    "identifier": [{"value": "IPP123"}],
    "name": [{"family": "Smith", "given": ["John"]}],
    "telecom": [
        {"system": "phone", "value": "01 23 45 67 89", "use": "home"},
        {"system": "email", "value": "john.smith@email.com"},
    ],
    "address": [
        {
            "use": "home",
            "line": ["123 Peace Street"],
            "city": "Paris",
            "postalCode": "75001",
            "country": "FR",
        }
    ],
    "gender": "male",
    "birthDate": "1980-05-15",
}


def patient_row(engine, num: int = 1):
    with engine.connect() as conn:
        return (
            conn.execute(select(dwh_patient).where(dwh_patient.c.patient_num == num))
            .mappings()
            .one()
        )


def ipp_rows(engine) -> list[tuple]:
    ipphist = dwh_patient_ipphist.c
    query = select(
        ipphist.patient_num,
        ipphist.origin_patient_id,
        ipphist.hospital_patient_id,
        ipphist.master_patient_id,
    ).order_by(ipphist.ipphist_num)
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(query)]


@pytest.fixture
def department(engine) -> int:
    """department-1, "Cardiology Department", as the documented payload expects."""
    return make_department(engine, site_num=make_site(engine))


def test_documented_create_answers_the_documented_patient(client, department):
    response = client.post(PATIENT, json=DOC_PATIENT)
    assert response.status_code == 201
    created = response.json()
    assert created["id"] == "1"
    assert created["identifier"] == [
        {"use": "official", "value": "1"},
        {"use": "usual", "system": "HIS", "value": "IPP123456"},
    ]
    assert created["name"] == [{"family": "Smith", "given": ["John Peter"]}]
    assert created["gender"] == "male"
    assert created["birthDate"] == "1980-05-15"
    assert created["managingOrganization"] == {
        "reference": "Organization/department-1",
        "display": "Cardiology Department",
    }
    assert response.headers["location"].endswith("/v4.3.0/Patient/1")


def test_documented_create_stores_warehouse_columns(client, engine, department):
    client.post(PATIENT, json=DOC_PATIENT)
    row = patient_row(engine)
    assert (row["lastname"], row["firstname"], row["sex"]) == ("Smith", "John Peter", "M")
    assert (row["managing_org_level"], row["managing_org_num"]) == ("department", 1)
    assert row["birth_date_precision"] == "day"
    assert ipp_rows(engine) == [(1, "HIS", "IPP123456", True)]


def test_quickstart_create_read_patch_delete(client, engine):
    created = client.post(PATIENT, json=QUICKSTART_PATIENT)
    assert created.status_code == 201
    body = created.json()
    body.pop("meta")
    assert body == {
        "resourceType": "Patient",
        "id": "1",
        "identifier": [
            {"use": "official", "value": "1"},
            {"use": "usual", "system": "HIS", "value": "123456789"},
        ],
        "name": [{"family": "Smith", "given": ["John Michael"]}],
        "gender": "male",
        "birthDate": "1980-05-15",
    }
    read = client.get(f"{PATIENT}1/").json()
    assert read["name"][0]["given"][0] == "John Michael"
    phone = [{"system": "phone", "value": "01 23 45 67 89", "use": "home"}]
    patched = client.patch(f"{PATIENT}1/", json={"telecom": phone})
    assert patched.status_code == 200
    assert patched.json()["telecom"] == phone
    assert patched.json()["name"] == body["name"]
    assert patched.json()["identifier"] == body["identifier"]
    assert patient_row(engine)["phone_number"] == "01 23 45 67 89"
    assert client.delete(f"{PATIENT}1/").status_code == 204
    assert client.get(f"{PATIENT}1/").status_code == 410
    assert count_rows(engine, dwh_patient_ipphist) == 0


def test_read_on_standard_path(client):
    client.post(PATIENT, json=QUICKSTART_PATIENT)
    assert client.get("/v4.3.0/Patient/1").json()["id"] == "1"


def test_patient_record_guide(client, engine):
    """The guide's unit gets a department parent (partOf is required for units)."""
    make_unit(engine, department_num=make_department(engine), name="Cardiology Unit A")
    body = {
        "resourceType": "Patient",
        "identifier": [{"value": "IPP987654"}],
        "name": [{"family": "Smith", "given": ["Emma", "Marie"]}],
        "gender": "female",
        "birthDate": "1975-03-20",
        "managingOrganization": {"reference": "Organization/unit-1"},
    }
    created = client.post(PATIENT, json=body).json()
    assert created["name"][0]["family"] == "Smith"
    assert created["managingOrganization"]["display"] == "Cardiology Unit A"
    read = client.get(f"{PATIENT}{created['id']}/").json()
    assert read["identifier"][1]["value"] == "IPP987654"
    assert read["gender"] == "female"
    assert read["birthDate"] == "1975-03-20"


def test_multi_ipp_keeps_a_sent_official_identifier_out_of_the_ipps(client, engine):
    """CONTRACT 9: the sent official identifier (another system's id) is kept, not an IPP;
    the server's own comes first."""
    created = client.post(PATIENT, json=MULTI_IPP).json()
    assert created["identifier"] == [
        {"use": "official", "value": "1"},
        {"use": "official", "value": "123"},
        {"use": "usual", "system": "HIS", "value": "IPP123456"},
        {"use": "usual", "system": "HIS", "value": "IPP_OLD_789"},
    ]
    assert ipp_rows(engine) == [(1, "HIS", "IPP123456", True), (1, "HIS", "IPP_OLD_789", False)]


def test_put_replaces_the_identifier_set(client, engine):
    client.post(PATIENT, json=MULTI_IPP)
    body = dict(MULTI_IPP, identifier=[{"system": "GAM", "value": "G-1"}, {"value": "IPP_OLD_789"}])
    response = client.put(f"{PATIENT}1/", json=body)
    assert response.status_code == 200
    assert response.json()["identifier"][1:] == [
        {"system": "GAM", "value": "G-1"},
        {"system": "HIS", "value": "IPP_OLD_789"},
    ]
    assert ipp_rows(engine) == [(1, "GAM", "G-1", True), (1, "HIS", "IPP_OLD_789", False)]


def test_identifier_taken_by_another_patient_is_409(client, engine):
    client.post(PATIENT, json=QUICKSTART_PATIENT)
    response = client.post(PATIENT, json=QUICKSTART_PATIENT)
    assert response.status_code == 409
    assert response.json()["issue"][0]["code"] == "duplicate"
    assert count_rows(engine, dwh_patient) == 1
    other_system = dict(QUICKSTART_PATIENT, identifier=[{"system": "GAM", "value": "123456789"}])
    assert client.post(PATIENT, json=other_system).status_code == 201
    taken = dict(QUICKSTART_PATIENT, identifier=[{"value": "123456789"}])
    assert client.put(f"{PATIENT}2/", json=taken).status_code == 409
    assert ipp_rows(engine)[1] == (2, "GAM", "123456789", True)


def test_anonymous_patient(client, engine):
    created = client.post(PATIENT, json=ANONYMOUS).json()
    assert created["gender"] == "unknown"
    # sent without `use`, answered without: the default system is the one difference
    assert created["identifier"][1] == {"system": "HIS", "value": "ANON_001"}
    assert patient_row(engine)["sex"] is None


def test_name_is_optional(client):
    body = dict(ANONYMOUS)
    body.pop("name")
    created = client.post(PATIENT, json=body)
    assert created.status_code == 201
    assert "name" not in created.json()


def test_phone_and_address_are_answered_unchanged_and_copied(client, engine):
    created = client.post(PATIENT, json=WITH_CONTACT).json()
    assert created["telecom"] == WITH_CONTACT["telecom"]
    assert created["address"] == WITH_CONTACT["address"]
    row = patient_row(engine)
    assert row["phone_number"] == "01 23 45 67 89"
    assert row["email"] == "john.smith@email.com"
    assert row["residence_address"] == "123 Peace Street"
    assert (row["residence_city"], row["zip_code"], row["residence_country"]) == (
        "Paris",
        "75001",
        "FR",
    )


@pytest.mark.parametrize(("sent", "answered"), [("1980", "1980"), ("1980-05", "1980-05")])
def test_partial_birth_dates_are_kept(client, engine, sent, answered):
    created = client.post(PATIENT, json=dict(QUICKSTART_PATIENT, birthDate=sent)).json()
    assert created["birthDate"] == answered
    assert patient_row(engine)["birth_date_precision"] == ("year" if sent == "1980" else "month")


@pytest.mark.parametrize(("gender", "sex"), [("male", "M"), ("female", "F"), ("other", "O")])
def test_gender_to_sex(client, engine, gender, sex):
    created = client.post(PATIENT, json=dict(QUICKSTART_PATIENT, gender=gender)).json()
    assert created["gender"] == gender
    assert patient_row(engine)["sex"] == sex


def test_documented_death_declarations(client, engine):
    client.post(PATIENT, json=QUICKSTART_PATIENT)
    when = {"resourceType": "Patient", "deceasedDateTime": "2024-01-15T14:30:00Z"}
    answered = client.patch(f"{PATIENT}1/", json=when).json()
    assert answered["deceasedDateTime"] == "2024-01-15T14:30:00Z"
    row = patient_row(engine)
    assert row["death_code"] == "d"
    assert row["death_date"] is not None
    boolean = client.patch(
        f"{PATIENT}1/", json={"resourceType": "Patient", "deceasedBoolean": True}
    )
    assert boolean.json()["deceasedBoolean"] is True
    assert "deceasedDateTime" not in boolean.json()
    row = patient_row(engine)
    assert (row["death_code"], row["death_date"]) == ("d", None)


def test_deceased_false_is_the_warehouse_alive(client, engine):
    client.post(PATIENT, json=dict(QUICKSTART_PATIENT, deceasedBoolean=True))
    answered = client.patch(f"{PATIENT}1/", json={"deceasedBoolean": False}).json()
    assert answered["deceasedBoolean"] is False  # answered as sent (CONTRACT section 9)
    assert patient_row(engine)["death_code"] is None


def test_both_deceased_forms_are_400(client, engine):
    body = dict(QUICKSTART_PATIENT, deceasedBoolean=True, deceasedDateTime="2024-01-15T14:30:00Z")
    response = client.post(PATIENT, json=body)
    assert response.status_code == 400
    assert response.json()["issue"][0]["code"] == "invalid"
    assert count_rows(engine, dwh_patient) == 0


def test_documented_merge(client, engine):
    client.post(PATIENT, json=QUICKSTART_PATIENT)
    client.post(PATIENT, json=MULTI_IPP)
    merge = {
        "resourceType": "Patient",
        "link": [{"other": {"reference": "Patient/1"}, "type": "replaced-by"}],
    }
    response = client.patch(f"{PATIENT}2/", json=merge)
    assert response.status_code == 200
    assert response.json()["link"] == [{"other": {"reference": "Patient/1"}, "type": "replaced-by"}]
    row = patient_row(engine, 2)
    assert (row["is_merged"], row["merged_into"]) == (True, 1)
    blocked = client.delete(f"{PATIENT}1/")
    assert blocked.status_code == 409
    assert blocked.json()["issue"][0]["diagnostics"] == "Patient 1 is referenced by 1 Patient"
    unmerged = client.patch(f"{PATIENT}2/", json={"link": None}).json()
    assert "link" not in unmerged
    assert patient_row(engine, 2)["merged_into"] is None


@pytest.mark.parametrize(
    ("target", "link_type", "code", "needle"),
    [
        ("Patient/2", "replaced-by", "invalid", "itself"),
        ("Patient/999", "replaced-by", "not-found", "Patient with ID 999 does not exist"),
        ("Patient/1", "cycle", "invalid", "cycle"),
        ("Patient/1", "seealso", "invalid", "replaced-by"),
        ("Patient/1", "replaces", "invalid", "replaced-by"),
    ],
)
def test_bad_merge_links_are_400(client, engine, target, link_type, code, needle):
    client.post(PATIENT, json=QUICKSTART_PATIENT)
    client.post(PATIENT, json=MULTI_IPP)
    if link_type == "cycle":
        link = [{"other": {"reference": "Patient/2"}, "type": "replaced-by"}]
        assert client.patch(f"{PATIENT}1/", json={"link": link}).status_code == 200
        link_type = "replaced-by"
    link = [{"other": {"reference": target}, "type": link_type}]
    response = client.patch(f"{PATIENT}2/", json={"link": link})
    assert response.status_code == 400, response.text
    issue = response.json()["issue"][0]
    assert issue["code"] == code
    assert needle in issue["diagnostics"]
    assert patient_row(engine, 2)["merged_into"] is None


def test_get_then_put_round_trips(client, department):
    client.post(PATIENT, json=QUICKSTART_PATIENT)
    full = dict(
        WITH_CONTACT,
        identifier=[{"value": "IPP-A"}, {"system": "GAM", "value": "G-7"}],
        name=[{"family": "Smith", "given": ["John"]}, {"use": "maiden", "family": "Doe"}],
        deceasedDateTime="2024-01-15T15:30:00+01:00",
        managingOrganization={"reference": "organization/department-1"},
        link=[{"other": {"reference": "patient/1"}, "type": "replaced-by"}],
        birthDate="1980-05",
    )
    created = client.post(PATIENT, json=full).json()
    assert created["deceasedDateTime"] == "2024-01-15T14:30:00Z"
    assert created["link"][0]["other"] == {"reference": "Patient/1"}
    again = client.put("/v4.3.0/Patient/2", json=created)
    assert again.status_code == 200, again.text
    answered = again.json()
    assert answered.pop("meta")["versionId"] == "2"
    created.pop("meta")
    assert answered == created


def test_if_match_mismatch_is_412(client):
    client.post(PATIENT, json=QUICKSTART_PATIENT)
    response = client.put(f"{PATIENT}1/", json=QUICKSTART_PATIENT, headers={"If-Match": 'W/"5"'})
    assert response.status_code == 412


def _without(field: str) -> dict:
    body = dict(QUICKSTART_PATIENT)
    body.pop(field)
    return body


@pytest.mark.parametrize(
    ("body", "code", "needle"),
    [
        (_without("identifier"), "required", "identifier"),
        (
            dict(QUICKSTART_PATIENT, identifier=[{"use": "official", "value": "9"}]),
            "required",
            "identifier",
        ),
        (_without("gender"), "required", "gender"),
        (_without("birthDate"), "required", "Field 'birthDate' is required"),
        (dict(QUICKSTART_PATIENT, gender="M"), "invalid", "gender"),
        (dict(QUICKSTART_PATIENT, birthDate="15/05/1980"), "invalid", "Invalid date format"),
        (dict(QUICKSTART_PATIENT, birthDate="1980-02-30"), "invalid", "Invalid date format"),
        (dict(QUICKSTART_PATIENT, deceasedDateTime="2024-01-15T14:30:00"), "invalid", "date"),
        (
            dict(
                QUICKSTART_PATIENT,
                managingOrganization={"reference": "Organization/department-999"},
            ),
            "not-found",
            "Department with ID 999 does not exist",
        ),
        (
            dict(QUICKSTART_PATIENT, managingOrganization={"reference": "Organization/unit-5"}),
            "not-found",
            "Unit with ID 5 does not exist",
        ),
        (
            dict(QUICKSTART_PATIENT, managingOrganization={"reference": "Organization/999"}),
            "not-found",
            "Organization with ID 999 does not exist",
        ),
        (
            dict(QUICKSTART_PATIENT, managingOrganization={"reference": "Patient/1"}),
            "invalid",
            "Organization",
        ),
        (dict(QUICKSTART_PATIENT, identifier=[{"value": "X" * 101}]), "invalid", "100"),
        (
            dict(QUICKSTART_PATIENT, identifier=[{"system": "S" * 256, "value": "X"}]),
            "invalid",
            "255",
        ),
        (dict(QUICKSTART_PATIENT, name=[{"family": "F" * 121}]), "invalid", "120"),
        (dict(QUICKSTART_PATIENT, resourceType="Organization"), "invalid", "resourceType"),
    ],
)
def test_bad_input_is_400_and_stores_nothing(client, engine, body, code, needle):
    response = client.post(PATIENT, json=body)
    assert response.status_code == 400, response.text
    issue = response.json()["issue"][0]
    assert issue["code"] == code
    assert needle in issue["diagnostics"]
    assert count_rows(engine, dwh_patient) == 0
    assert count_rows(engine, dwh_patient_ipphist) == 0


def test_failed_put_leaves_the_patient_unchanged(client, engine):
    client.post(PATIENT, json=MULTI_IPP)
    bad = dict(
        MULTI_IPP,
        identifier=[{"value": "NEW"}],
        managingOrganization={"reference": "Organization/site-9"},
    )
    assert client.put(f"{PATIENT}1/", json=bad).status_code == 400
    assert [row[2] for row in ipp_rows(engine)] == ["IPP123456", "IPP_OLD_789"]
    assert patient_row(engine)["row_version"] == 1


def _seed_fact(engine, patient: int, thesaurus: str) -> None:
    with write_transaction(engine) as conn:
        exists = conn.execute(
            select(dwh_thesaurus.c.thesaurus_num).where(dwh_thesaurus.c.thesaurus_code == thesaurus)
        ).first()
        if exists is None:
            conn.execute(dwh_thesaurus.insert().values(thesaurus_code=thesaurus, label=thesaurus))
        concept = conn.execute(
            dwh_thesaurus_data.insert()
            .values(thesaurus_code=thesaurus, concept_code=f"C{patient}", concept_str="Concept")
            .returning(dwh_thesaurus_data.c.thesaurus_data_num)
        ).scalar_one()
        when = datetime(2024, 1, 15, tzinfo=UTC)
        conn.execute(
            dwh_data.insert().values(
                patient_num=patient,
                thesaurus_data_num=concept,
                thesaurus_code=thesaurus,
                document_date=when,
                start_date=when,
            )
        )


def test_delete_blocked_by_stays_movements_documents_and_facts(client, engine):
    client.post(PATIENT, json=QUICKSTART_PATIENT)
    stay = make_stay(engine, patient_num=1)
    with engine.begin() as conn:
        conn.execute(
            dwh_patient_mvt.insert().values(
                patient_num=1, stay_num=stay, entry_date=datetime(2024, 1, 10, tzinfo=UTC)
            )
        )
    make_document(engine, patient_num=1)
    _seed_fact(engine, 1, "Acte")
    _seed_fact(engine, 1, "Custom")
    response = client.delete(f"{PATIENT}1/")
    assert response.status_code == 409
    issue = response.json()["issue"][0]
    assert issue["code"] == "conflict"
    assert issue["diagnostics"] == (
        "Patient 1 is referenced by 2 Encounter, 1 DocumentReference, 1 Procedure, 1 Data"
    )
    assert count_rows(engine, dwh_patient) == 1
    assert count_rows(engine, dwh_patient_ipphist) == 1


def test_demo_loads_organizations_and_patients(database_url, engine):
    from tests.conftest import empty_tables

    empty_tables(engine)
    message = load_demo(make_settings(database_url))
    assert message.startswith("demo data loaded")
    with engine.connect() as conn:
        rows = conn.execute(
            select(dwh_patient.c.lastname, dwh_patient.c.managing_org_level).order_by(
                dwh_patient.c.patient_num
            )
        ).all()
    assert [tuple(row) for row in rows] == [("Martin", "department"), ("Durand", None)]
    assert load_demo(make_settings(database_url)) == "demo data already present: nothing loaded"
    empty_tables(engine)


def _ids(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [entry["resource"]["id"] for entry in response.json().get("entry", [])]


def test_search_patients(client, department):
    client.post(PATIENT, json=DOC_PATIENT)
    client.post(PATIENT, json=dict(ANONYMOUS, deceasedBoolean=True))
    client.post(PATIENT, json=dict(MULTI_IPP, identifier=[{"system": "GAM", "value": "G-1"}]))
    assert _ids(client.get("/v4.3.0/Patient?identifier=HIS|IPP123456")) == ["1"]
    assert _ids(client.get("/v4.3.0/Patient?identifier=G-1")) == ["3"]
    assert _ids(client.get("/v4.3.0/Patient?identifier=GAM|IPP123456")) == []
    assert _ids(client.get("/v4.3.0/Patient?gender=unknown")) == ["2"]
    assert _ids(client.get("/v4.3.0/Patient?birthdate=1970-01-01")) == ["2"]
    assert _ids(client.get("/v4.3.0/Patient?deceased=true")) == ["2"]
    assert _ids(client.get("/v4.3.0/Patient?organization=Organization/department-1")) == ["1"]
    assert _ids(client.get("/v4.3.0/Patient?organization=Organization/unit-1")) == []


def test_search_patients_by_name(client):
    client.post(PATIENT, json=QUICKSTART_PATIENT)
    client.post(PATIENT, json=dict(ANONYMOUS, name=[{"family": "Sméth", "given": ["Éloïse"]}]))
    assert _ids(client.get("/v4.3.0/Patient?family=smi")) == ["1"]
    assert _ids(client.get("/v4.3.0/Patient?family=SMETH")) == ["2"]
    assert _ids(client.get("/v4.3.0/Patient?given=john%20m")) == ["1"]
    assert _ids(client.get("/v4.3.0/Patient?name=eloise")) == ["2"]
