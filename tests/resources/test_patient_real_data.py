"""Patient from real generated data (CONTRACT 9): a Synthea-shaped Patient loads whole,
its columns get what fits and a read answers what was sent, except the documented
differences (docs/resources/patient.md): id and meta, the official identifier first, the
default system of an IPP sent without one, given names joined, managingOrganization
spelled `Organization/<level>-N` with the organisation's name, instants in UTC."""

from __future__ import annotations

import copy
from typing import Any

from sqlalchemy import select

from codoc_fhir.warehouse.schema import dwh_patient, dwh_patient_ipphist
from tests.factories import make_site

PATIENT = "/v4.3.0/patient/"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition"


def typed(code: str, display: str, system: str, value: str) -> dict[str, Any]:
    return {
        "type": {"coding": [{"system": V2_0203, "code": code, "display": display}]},
        "system": system,
        "value": value,
    }


# The shape Synthea writes (patient bundle of synthea 3.x), trimmed of the narrative div.
SYNTHEA_PATIENT: dict[str, Any] = {
    "resourceType": "Patient",
    "id": "c1f4a1d8-8a8a-4e4e-9d2e-7b1a1e1d2c3b",
    "meta": {"profile": [f"{US_CORE}/us-core-patient"]},
    "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'},
    "extension": [
        {
            "url": f"{US_CORE}/us-core-race",
            "extension": [
                {
                    "url": "ombCategory",
                    "valueCoding": {
                        "system": "urn:oid:2.16.840.1.113883.6.238",
                        "code": "2106-3",
                        "display": "White",
                    },
                },
                {"url": "text", "valueString": "White"},
            ],
        },
        {
            "url": f"{US_CORE}/us-core-ethnicity",
            "extension": [
                {
                    "url": "ombCategory",
                    "valueCoding": {
                        "system": "urn:oid:2.16.840.1.113883.6.238",
                        "code": "2186-5",
                        "display": "Not Hispanic or Latino",
                    },
                },
                {"url": "text", "valueString": "Not Hispanic or Latino"},
            ],
        },
        {
            "url": "http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName",
            "valueString": "Sally Kuhn",
        },
        {"url": f"{US_CORE}/us-core-birthsex", "valueCode": "M"},
        {
            "url": "http://hl7.org/fhir/StructureDefinition/patient-birthPlace",
            "valueAddress": {"city": "Boston", "state": "Massachusetts", "country": "US"},
        },
        {
            "url": "http://synthetichealth.github.io/synthea/disability-adjusted-life-years",
            "valueDecimal": 0.0,
        },
    ],
    "identifier": [
        {"system": "https://github.com/synthetichealth/synthea", "value": "c1f4a1d8-8a8a"},
        typed("MR", "Medical Record Number", "http://hospital.smarthealthit.org", "MR-77"),
        typed("SS", "Social Security Number", "http://hl7.org/fhir/sid/us-ssn", "999-43-7316"),
        typed("DL", "Driver's License", "urn:oid:2.16.840.1.113883.4.3.25", "S99933732"),
        dict(
            typed(
                "PPN",
                "Passport Number",
                "http://standardhealthrecord.org/fhir/StructureDefinition/passportNumber",
                "X41129973X",
            ),
            assigner={"reference": "Organization/us-state-department"},
        ),
    ],
    "name": [
        {
            "use": "official",
            "family": "Hermiston",
            "given": ["Jean", "Luc"],
            "prefix": ["Mr."],
            "suffix": ["PhD"],
            "period": {"start": "1990-01-01"},
        },
        {"use": "maiden", "family": "Kuhn", "given": ["Jean"]},
        {"use": "nickname", "given": ["JL"]},
    ],
    "telecom": [{"system": "phone", "value": "555-261-9186", "use": "home"}],
    "gender": "male",
    "birthDate": "1968-04-21",
    "deceasedDateTime": "2020-02-01T10:30:00-05:00",
    "address": [
        {
            "extension": [
                {
                    "url": "http://hl7.org/fhir/StructureDefinition/geolocation",
                    "extension": [
                        {"url": "latitude", "valueDecimal": 42.36},
                        {"url": "longitude", "valueDecimal": -71.05},
                    ],
                }
            ],
            "line": ["123 Hickle Grove"],
            "city": "Boston",
            "state": "MA",
            "postalCode": "02108",
            "country": "US",
        }
    ],
    "maritalStatus": {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus",
                "code": "M",
                "display": "Married",
            }
        ],
        "text": "Married",
    },
    "multipleBirthBoolean": False,
    "communication": [
        {
            "language": {
                "coding": [{"system": "urn:ietf:bcp:47", "code": "en-US", "display": "English"}],
                "text": "English",
            }
        }
    ],
    "generalPractitioner": [{"reference": "Practitioner/9999967592", "display": "Dr. Kris"}],
    "managingOrganization": {"reference": "Organization/site-1", "display": "Sent name"},
}


def expected_read(sent: dict[str, Any], site_name: str) -> dict[str, Any]:
    """What a read answers for `sent`: the differences patient.md lists, nothing else."""
    answer = copy.deepcopy(sent)
    answer.pop("meta")
    answer["id"] = "1"
    answer["identifier"].insert(0, {"use": "official", "value": "1"})
    answer["name"][0]["given"] = ["Jean Luc"]  # given names joined
    answer["deceasedDateTime"] = "2020-02-01T15:30:00Z"  # instants in UTC
    answer["managingOrganization"] = {"reference": "Organization/site-1", "display": site_name}
    return answer


def without_meta(resource: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in resource.items() if key != "meta"}


def patient_row(engine: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(select(dwh_patient)).mappings().one()


def ipp_rows(engine: Any) -> list[tuple]:
    ipphist = dwh_patient_ipphist.c
    query = select(
        ipphist.origin_patient_id, ipphist.hospital_patient_id, ipphist.master_patient_id
    ).order_by(ipphist.ipphist_num)
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(query)]


def test_synthea_patient_loads_whole_and_reads_back_unchanged(client, engine):
    make_site(engine, name="Boston General")
    response = client.post(PATIENT, json=SYNTHEA_PATIENT)
    assert response.status_code == 201, response.text
    expected = expected_read(SYNTHEA_PATIENT, "Boston General")
    assert without_meta(response.json()) == expected
    assert without_meta(client.get(f"{PATIENT}1/").json()) == expected
    assert without_meta(client.get("/v4.3.0/Patient/1").json()) == expected


def test_synthea_patient_columns_get_what_fits(client, engine):
    site = make_site(engine, name="Boston General")
    assert client.post(PATIENT, json=SYNTHEA_PATIENT).status_code == 201
    # the untyped identifier and the MR are IPPs; SSN, licence and passport are kept only
    assert ipp_rows(engine) == [
        ("https://github.com/synthetichealth/synthea", "c1f4a1d8-8a8a", True),
        ("http://hospital.smarthealthit.org", "MR-77", False),
    ]
    row = patient_row(engine)
    assert (row["lastname"], row["firstname"], row["maiden_name"]) == (
        "Hermiston",
        "Jean Luc",
        "Kuhn",
    )
    assert (row["sex"], row["birth_date"].date().isoformat()) == ("M", "1968-04-21")
    assert row["death_date"].replace(tzinfo=None).isoformat() == "2020-02-01T15:30:00"
    assert (row["phone_number"], row["residence_city"], row["zip_code"]) == (
        "555-261-9186",
        "Boston",
        "02108",
    )
    assert (row["managing_org_level"], row["managing_org_num"]) == ("site", site)


def test_an_sql_update_of_a_column_shows_beside_the_kept_elements(client, engine):
    make_site(engine, name="Boston General")
    client.post(PATIENT, json=SYNTHEA_PATIENT)
    with engine.begin() as conn:
        conn.execute(dwh_patient.update().values(lastname="Picard"))
    read = client.get(f"{PATIENT}1/").json()
    assert read["name"][0]["family"] == "Picard"
    assert read["name"][0]["prefix"] == ["Mr."]  # the kept parts of that name stay
    assert read["maritalStatus"] == SYNTHEA_PATIENT["maritalStatus"]


def test_references_outside_the_warehouse_are_stored_as_sent(client, engine):
    """identifier.assigner, generalPractitioner and a managingOrganization that is not an
    Organization of the hospital tree (one stored whole, a conditional or display-only
    reference) never block: the columns stay empty and the element is answered as sent."""
    for reference in (
        {"reference": "Organization/org-7", "display": "Aetna"},
        {"reference": "Organization?identifier=https://github.com/synthetichealth/synthea|x"},
        {"display": "Somewhere"},
    ):
        body = dict(SYNTHEA_PATIENT, managingOrganization=reference)
        body["identifier"] = [dict(body["identifier"][0], value=f"id-{len(str(reference))}")]
        response = client.post(PATIENT, json=body)
        assert response.status_code == 201, response.text
        read = client.get(f"{PATIENT}{response.json()['id']}/").json()
        assert read["managingOrganization"] == reference
        assert read["generalPractitioner"] == SYNTHEA_PATIENT["generalPractitioner"]
        row = patient_row_of(engine, int(response.json()["id"]))
        assert (row["managing_org_level"], row["managing_org_num"]) == (None, None)


def patient_row_of(engine: Any, num: int) -> Any:
    with engine.connect() as conn:
        query = select(dwh_patient).where(dwh_patient.c.patient_num == num)
        return conn.execute(query).mappings().one()


def test_a_warehouse_organization_that_does_not_exist_is_still_400(client, engine):
    body = dict(SYNTHEA_PATIENT, managingOrganization={"reference": "Organization/site-99"})
    response = client.post(PATIENT, json=body)
    assert response.status_code == 400
    assert response.json()["issue"][0]["code"] == "not-found"


def test_without_a_usual_identifier_the_first_one_is_the_ipp(client, engine):
    """An R4B example Patient carries only an official identifier: it becomes the IPP
    (the warehouse needs one), and is answered as sent."""
    official = {
        "use": "official",
        "type": {"text": "BSN"},
        "system": "urn:oid:2.16.840.1.113883.2.4.6.3",
        "value": "123456789",
    }
    body = dict(SYNTHEA_PATIENT, identifier=[official], managingOrganization={"display": "x"})
    response = client.post(PATIENT, json=body)
    assert response.status_code == 201, response.text
    assert ipp_rows(engine) == [("urn:oid:2.16.840.1.113883.2.4.6.3", "123456789", True)]
    read = client.get(f"{PATIENT}1/").json()
    assert read["identifier"] == [{"use": "official", "value": "1"}, official]


def test_no_identifier_with_a_value_is_400(client, engine):
    body = dict(SYNTHEA_PATIENT, identifier=[{"system": "urn:x"}])
    response = client.post(PATIENT, json=body)
    assert response.status_code == 400
    assert "IPP" in response.json()["issue"][0]["diagnostics"]
    assert ipp_rows(engine) == []


def test_names_out_of_order_and_a_text_only_name(client, engine):
    names = [
        {"use": "maiden", "family": "Kuhn"},
        {"text": "Jean-Luc Hermiston"},
        {"use": "usual", "family": "Hermiston", "given": ["Jean"]},
    ]
    body = dict(SYNTHEA_PATIENT, name=names, managingOrganization={"display": "x"})
    response = client.post(PATIENT, json=body)
    assert response.status_code == 201, response.text
    assert client.get(f"{PATIENT}1/").json()["name"] == names
    row = patient_row(engine)
    assert (row["lastname"], row["firstname"], row["maiden_name"]) == ("Hermiston", "Jean", "Kuhn")


def test_carebundle_patient_reads_back_unchanged(client):
    carebundle = {
        "resourceType": "Patient",
        "meta": {"profile": [f"{US_CORE}/us-core-patient"]},
        "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'},
        "identifier": [
            {"system": "urn:uuid:6f2a1d3e-9c47-5b8a-a1f0-2d4e6c8b0a17", "value": "E1035AC9"}
        ],
        "name": [{"use": "official", "family": "Syntheson", "given": ["Juno"]}],
        "gender": "female",
        "birthDate": "1971-07-13",
    }
    response = client.post(PATIENT, json=carebundle)
    assert response.status_code == 201, response.text
    expected = {key: value for key, value in carebundle.items() if key != "meta"}
    expected = dict(
        expected, id="1", identifier=[{"use": "official", "value": "1"}, *carebundle["identifier"]]
    )
    assert without_meta(client.get(f"{PATIENT}1/").json()) == expected


def test_put_of_the_read_changes_nothing(client, engine):
    make_site(engine, name="Boston General")
    client.post(PATIENT, json=SYNTHEA_PATIENT)
    read = client.get(f"{PATIENT}1/").json()
    response = client.put(f"{PATIENT}1/", json=without_meta(read))
    assert response.status_code == 200, response.text
    assert without_meta(response.json()) == without_meta(read)


def test_kept_identifiers_are_searchable(client, engine):
    make_site(engine, name="Boston General")
    client.post(PATIENT, json=SYNTHEA_PATIENT)
    for query in (
        "identifier=http://hl7.org/fhir/sid/us-ssn|999-43-7316",
        "identifier=S99933732",
        "identifier=http://hospital.smarthealthit.org|MR-77",
    ):
        bundle = client.get(f"/v4.3.0/Patient?{query}").json()
        assert [entry["resource"]["id"] for entry in bundle.get("entry", [])] == ["1"], query
    other_system = client.get("/v4.3.0/Patient?identifier=urn:other|999-43-7316").json()
    assert other_system.get("entry", []) == []
