"""CodeSystem (thesauri and their concepts): the documented payloads and the contract."""

from __future__ import annotations

import copy

import pytest
from sqlalchemy import select

from codoc_fhir.warehouse import schema
from codoc_fhir.warehouse.schema import dwh_thesaurus, dwh_thesaurus_data
from tests.factories import NOW, count_rows, make_document, make_patient, seed_procedure_context

BASE = "/v4.3.0"


def thesaurus(code: str, name: str, title: str) -> dict:
    """The CodeSystem body the docs send (official "1" included, as they do)."""
    return {
        "resourceType": "CodeSystem",
        "url": f"urn:codoc:fhir:codesystem:{code}",
        "identifier": [{"use": "official", "value": "1"}, {"use": "usual", "value": code}],
        "name": name,
        "title": title,
        "status": "active",
        "content": "complete",
    }


CIM10 = thesaurus("CIM10-FR", "CIM10-FR", "CIM-10 French Classification")  # api/codesystem.md
ALLERGIES = thesaurus("ALLERGIES", "Allergies", "Allergies Thesaurus")  # custom-thesaurus.md
ALLERGY_CONCEPTS = [
    {"code": "PENICILLIN", "display": "Penicillin allergy"},
    {"code": "PEANUT", "display": "Peanut allergy"},
    {"code": "LATEX", "display": "Latex allergy"},
]


def codes(client, path: str = "/codesystem/ALLERGIES/") -> list[str]:
    return [item["code"] for item in client.get(BASE + path).json().get("concept", [])]


# --- api/codesystem.md ----------------------------------------------------------------------


def test_documented_thesaurus_is_created(client, engine):
    response = client.post(f"{BASE}/codesystem/", json=CIM10)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["id"] == "1"
    assert created["url"] == "urn:codoc:fhir:codesystem:CIM10-FR"
    assert created["identifier"] == [
        {"use": "official", "value": "1"},
        {"use": "usual", "value": "CIM10-FR"},
    ]
    assert (created["name"], created["title"]) == ("CIM10-FR", "CIM-10 French Classification")
    assert (created["status"], created["content"], created["count"]) == ("active", "complete", 0)
    assert "concept" not in created
    assert response.headers["location"].endswith("/v4.3.0/CodeSystem/1")
    for path in (
        "/codesystem/CIM10-FR/",
        "/codesystem/CIM10-FR",
        "/codesystem/1/",
        "/CodeSystem/1",
    ):
        assert client.get(BASE + path).json()["id"] == "1", path
    with engine.connect() as conn:
        row = conn.execute(select(dwh_thesaurus)).mappings().one()
    assert (row["thesaurus_code"], row["name"], row["label"]) == (
        "CIM10-FR",
        "CIM10-FR",
        "CIM-10 French Classification",
    )


def test_documented_concept_routes(client, engine):
    client.post(f"{BASE}/codesystem/", json=ALLERGIES)
    single = client.post(
        f"{BASE}/codesystem/ALLERGIES/concept/",
        json={
            "resourceType": "CodeSystemConcept",
            "code": "PENICILLIN",
            "display": "Penicillin allergy",
        },
    )
    assert single.status_code == 201, single.text
    assert single.json() == {
        "id": "1",
        "code": "PENICILLIN",
        "display": "Penicillin allergy",
        "system": "urn:codoc:fhir:codesystem:ALLERGIES",
    }
    assert single.headers["location"].endswith("/v4.3.0/codesystem/ALLERGIES/concept/1/")
    batch = client.post(
        f"{BASE}/codesystem/ALLERGIES/concept/", json={"concept": ALLERGY_CONCEPTS[1:]}
    )
    assert batch.status_code == 200, batch.text
    assert [item["id"] for item in batch.json()["concept"]] == ["2", "3"]
    read = client.get(f"{BASE}/codesystem/ALLERGIES/")
    assert read.json()["count"] == 3
    assert read.json()["meta"]["versionId"] == "3"  # each concept change is a new version
    assert [(c["id"], c["code"], c["display"]) for c in read.json()["concept"]] == [
        ("1", "PENICILLIN", "Penicillin allergy"),
        ("2", "PEANUT", "Peanut allergy"),
        ("3", "LATEX", "Latex allergy"),
    ]
    listed = client.get(f"{BASE}/codesystem/ALLERGIES/concept/").json()["concept"]
    assert [item["code"] for item in listed] == ["PENICILLIN", "PEANUT", "LATEX"]
    for key in ("PENICILLIN", "1"):
        found = client.get(f"{BASE}/codesystem/ALLERGIES/concept/{key}")
        assert found.json()["code"] == "PENICILLIN", key
    updated = client.put(
        f"{BASE}/codesystem/ALLERGIES/concept/1/",
        json={
            "resourceType": "CodeSystemConcept",
            "code": "PENICILLIN",
            "display": "Penicillin and derivatives allergy",
        },
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["display"] == "Penicillin and derivatives allergy"
    assert client.delete(f"{BASE}/codesystem/ALLERGIES/concept/3/").status_code == 204
    assert codes(client) == ["PENICILLIN", "PEANUT"]
    assert client.get(f"{BASE}/codesystem/ALLERGIES/concept/3/").status_code == 404


def test_documented_covid_symptoms_use_case(client):
    body = thesaurus("COVID_SYMPTOMS", "COVID-19 Symptoms", "COVID-19 Symptoms")
    created = client.post(f"{BASE}/codesystem/", json=body).json()
    assert created["identifier"][1]["value"] == "COVID_SYMPTOMS"
    assert created["name"] == "COVID-19 Symptoms"
    concepts = [
        {"code": "FEVER", "display": "Fever"},
        {"code": "COUGH", "display": "Dry cough"},
        {"code": "FATIGUE", "display": "Intense fatigue"},
        {"code": "ANOSMIA", "display": "Loss of smell"},
        {"code": "AGEUSIA", "display": "Loss of taste"},
    ]
    response = client.post(f"{BASE}/codesystem/COVID_SYMPTOMS/concept/", json={"concept": concepts})
    assert response.status_code == 200
    assert codes(client, "/codesystem/COVID_SYMPTOMS/") == [item["code"] for item in concepts]


# --- guides/custom-thesaurus.md ---------------------------------------------------------------


def test_custom_thesaurus_guide(client, engine):
    created = client.post(f"{BASE}/codesystem/", json=ALLERGIES)
    assert created.status_code == 201
    assert (created.json()["name"], created.json()["id"]) == ("Allergies", "1")
    concept = client.post(
        f"{BASE}/codesystem/ALLERGIES/concept/",
        json={"code": "PENICILLINE", "display": "Penicillin allergy"},
    ).json()
    assert concept["display"] == "Penicillin allergy"
    batch = [
        {"code": "PENICILLINE", "display": "Penicillin allergy"},
        {"code": "IODE", "display": "Iodine allergy"},
        {"code": "LATEX", "display": "Latex allergy"},
        {"code": "ARACHIDE", "display": "Peanut allergy"},
        {"code": "GLUTEN", "display": "Gluten intolerance"},
    ]
    # PENICILLINE is already there: the whole batch is refused (all or nothing) ...
    refused = client.post(f"{BASE}/codesystem/ALLERGIES/concept/", json={"concept": batch})
    assert refused.status_code == 409
    assert refused.json()["issue"][0]["code"] == "duplicate"
    assert "PENICILLINE" in refused.json()["issue"][0]["diagnostics"]
    assert count_rows(engine, dwh_thesaurus_data) == 1
    # ... and accepted without it, as the guide's "status 200" check expects.
    response = client.post(f"{BASE}/codesystem/ALLERGIES/concept/", json={"concept": batch[1:]})
    assert response.status_code == 200
    whole = client.get(f"{BASE}/codesystem/ALLERGIES/").json()
    assert (whole["name"], whole["status"], len(whole["concept"])) == ("Allergies", "active", 5)
    update = dict(
        ALLERGIES,
        name="Allergies and intolerances",
        concept=[
            {"code": "PENICILLINE", "display": "Penicillin allergy"},
            {"code": "IODE", "display": "Iodine allergy"},
        ],
    )
    updated = client.put(f"{BASE}/codesystem/ALLERGIES/", json=update)
    assert updated.status_code == 200, updated.text
    assert updated.json()["name"] == "Allergies and intolerances"
    assert codes(client) == ["PENICILLINE", "IODE"]
    assert count_rows(engine, dwh_thesaurus_data) == 2
    assert client.delete(f"{BASE}/codesystem/ALLERGIES/").status_code == 204
    assert count_rows(engine, dwh_thesaurus) == count_rows(engine, dwh_thesaurus_data) == 0


def test_covid_symptomes_complete_example(client):
    body = thesaurus("COVID_SYMPTOMES", "COVID-19 Symptoms", "COVID-19 Symptoms")
    assert client.post(f"{BASE}/codesystem/", json=body).json()["name"] == "COVID-19 Symptoms"
    symptoms = [
        ("FIEVRE", "Fever > 38°C"),
        ("TOUX", "Persistent dry cough"),
        ("DYSPNEE", "Breathing difficulties"),
        ("ANOSMIE", "Loss of smell"),
        ("AGUEUSIE", "Loss of taste"),
        ("FATIGUE", "Severe fatigue"),
        ("CEPHALEE", "Headache"),
        ("MYALGIE", "Muscle pain"),
        ("DIARRHEE", "Diarrhea"),
        ("RHINORRHEE", "Runny nose"),
    ]
    client.post(
        f"{BASE}/codesystem/COVID_SYMPTOMES/concept/",
        json={"concept": [{"code": code, "display": display} for code, display in symptoms]},
    )
    answer = client.get(f"{BASE}/codesystem/COVID_SYMPTOMES/").json()
    assert answer["name"] == "COVID-19 Symptoms"
    assert answer["identifier"][1]["value"] == "COVID_SYMPTOMES"
    assert len(answer["concept"]) == 10
    assert [(item["code"], item["display"]) for item in answer["concept"]] == symptoms


@pytest.mark.parametrize(
    ("code", "name", "title"),
    [
        ("TRAITEMENTS_CARDIO", "Cardiology treatments", "Cardiology Treatments"),
        ("SCORES_CARDIO", "Cardiology scores", "Cardiology Scores"),
    ],
)
def test_practical_use_case_thesauri(client, code, name, title):
    assert client.post(f"{BASE}/codesystem/", json=thesaurus(code, name, title)).status_code == 201
    concepts = [{"code": "NYHA", "display": "NYHA Classification (heart failure)"}]
    response = client.post(f"{BASE}/codesystem/{code}/concept/", json={"concept": concepts})
    assert response.status_code == 200
    assert codes(client, f"/codesystem/{code}/") == ["NYHA"]


# --- code, title and concepts on create -------------------------------------------------------


def test_code_comes_from_identifier_then_url_then_name(client):
    from_url = {key: value for key, value in ALLERGIES.items() if key != "identifier"}
    assert client.post(f"{BASE}/codesystem/", json=from_url).json()["identifier"][1] == {
        "use": "usual",
        "value": "ALLERGIES",
    }
    from_name = {"resourceType": "CodeSystem", "name": "ATC", "title": "ATC", "status": "active"}
    from_name["content"] = "complete"
    created = client.post(f"{BASE}/codesystem/", json=from_name).json()
    assert created["url"] == "urn:codoc:fhir:codesystem:ATC"


def test_concepts_in_the_body_are_created_with_the_thesaurus(client, engine):
    body = dict(ALLERGIES, concept=ALLERGY_CONCEPTS)
    created = client.post(f"{BASE}/codesystem/", json=body).json()
    assert created["count"] == 3
    assert [item["code"] for item in created["concept"]] == ["PENICILLIN", "PEANUT", "LATEX"]


def _without(body: dict, field: str) -> dict:
    return {key: value for key, value in body.items() if key != field}


def _with(body: dict, **changes) -> dict:
    return dict(copy.deepcopy(body), **changes)


BAD_THESAURI = [
    (_without(ALLERGIES, "title"), 400, "required", "title"),
    (_without(ALLERGIES, "status"), 400, "required", "status"),
    (
        _without(_without(_without(ALLERGIES, "identifier"), "url"), "name"),
        400,
        "required",
        "code",
    ),
    (
        _without(_without(thesaurus("X", "COVID-19 Symptoms", "T"), "identifier"), "url"),
        400,
        "invalid",
        "COVID-19 Symptoms",
    ),
    (_with(ALLERGIES, url="http://hl7.org/fhir/sid/icd-10"), 400, "invalid", "url"),
    (_with(ALLERGIES, url="urn:codoc:fhir:codesystem:OTHER"), 400, "invalid", "different"),
    (_with(ALLERGIES, identifier=[{"value": "A" * 31}], url=None), 400, "invalid", "30"),
    (_with(ALLERGIES, title="x" * 2001), 400, "invalid", "title"),
    (_with(ALLERGIES, concept=[{"code": "A"}]), 400, "required", "concept[0].display"),
    (
        _with(ALLERGIES, concept=[{"code": "A", "display": "a"}, {"code": "A", "display": "b"}]),
        409,
        "duplicate",
        "repeated",
    ),
    (
        _with(
            ALLERGIES,
            concept=[{"code": "A", "display": "a", "concept": [{"code": "B", "display": "b"}]}],
        ),
        400,
        "invalid",
        "nested",
    ),
    (_with(ALLERGIES, resourceType="ValueSet"), 400, "invalid", "resourceType"),
]


@pytest.mark.parametrize(("body", "status", "code", "needle"), BAD_THESAURI)
def test_bad_thesaurus_is_refused_and_stores_nothing(client, engine, body, status, code, needle):
    body = {key: value for key, value in body.items() if value is not None}
    response = client.post(f"{BASE}/codesystem/", json=body)
    assert response.status_code == status, response.text
    issue = response.json()["issue"][0]
    assert issue["code"] == code
    assert needle in issue["diagnostics"] + " ".join(issue.get("expression", []))
    assert count_rows(engine, dwh_thesaurus) == count_rows(engine, dwh_thesaurus_data) == 0


def test_duplicate_code_is_409(client, engine):
    client.post(f"{BASE}/codesystem/", json=ALLERGIES)
    response = client.post(f"{BASE}/codesystem/", json=ALLERGIES)
    assert response.status_code == 409
    assert response.json()["issue"][0]["code"] == "duplicate"
    assert count_rows(engine, dwh_thesaurus) == 1


# --- read, update, patch ------------------------------------------------------------------------


def test_get_then_put_round_trips(client):
    client.post(f"{BASE}/codesystem/", json=dict(ALLERGIES, concept=ALLERGY_CONCEPTS))
    read = client.get(f"{BASE}/codesystem/ALLERGIES/").json()
    again = client.put(f"{BASE}/CodeSystem/1", json=read)
    assert again.status_code == 200, again.text
    read.pop("meta")
    answered = again.json()
    assert answered.pop("meta")["versionId"] == "2"
    assert answered == read


def test_patch_changes_only_the_given_fields(client):
    client.post(f"{BASE}/codesystem/", json=dict(ALLERGIES, concept=ALLERGY_CONCEPTS))
    response = client.patch(f"{BASE}/codesystem/ALLERGIES/", json={"title": "Known allergies"})
    assert response.status_code == 200, response.text
    assert response.json()["title"] == "Known allergies"
    assert response.json()["name"] == "Allergies"
    assert response.json()["count"] == 3


def test_code_cannot_change_on_update(client):
    client.post(f"{BASE}/codesystem/", json=ALLERGIES)
    other = thesaurus("OTHER", "Other", "Other")
    response = client.put(f"{BASE}/codesystem/ALLERGIES/", json=other)
    assert response.status_code == 400
    assert "cannot change" in response.json()["issue"][0]["diagnostics"]
    kept = _without(_without(dict(ALLERGIES, title="New title"), "identifier"), "url")
    assert (
        client.put(f"{BASE}/codesystem/ALLERGIES/", json=kept).json()["url"].endswith("ALLERGIES")
    )


def test_unknown_thesaurus_is_404_everywhere(client):
    for method, path in (
        ("GET", "/codesystem/NOPE/"),
        ("GET", "/CodeSystem/9"),
        ("DELETE", "/codesystem/NOPE/"),
        ("GET", "/codesystem/NOPE/concept/"),
        ("GET", "/codesystem/NOPE/concept/A/"),
        ("GET", "/CodeSystem/NOPE/concept/A"),
    ):
        response = client.request(method, BASE + path)
        assert response.status_code == 404, path
        assert response.json()["issue"][0]["code"] == "not-found"


# --- concept routes -----------------------------------------------------------------------------


@pytest.fixture
def allergies(client):
    client.post(f"{BASE}/codesystem/", json=dict(ALLERGIES, concept=ALLERGY_CONCEPTS))


@pytest.mark.parametrize(
    ("body", "status", "code", "needle"),
    [
        (
            {"concept": [{"code": "NEW", "display": "n"}, {"code": "NEW", "display": "m"}]},
            409,
            "duplicate",
            "repeated",
        ),
        (
            {"concept": [{"code": "NEW", "display": "n"}, {"code": "LATEX", "display": "l"}]},
            409,
            "duplicate",
            "LATEX",
        ),
        (
            {"concept": [{"code": "NEW", "display": "n"}, {"code": "OTHER"}]},
            400,
            "required",
            "concept[1].display",
        ),
        ({"concept": []}, 400, "required", "concept"),
        ({"code": "NEW"}, 400, "required", "display"),
        ({"display": "no code"}, 400, "required", "code"),
        ({"code": "LATEX", "display": "again"}, 409, "duplicate", "LATEX"),
        ({"code": "NEW", "display": "n", "dispaly": "typo"}, 400, "invalid", "dispaly"),
        (
            {"code": "NEW", "display": "n", "system": "urn:codoc:fhir:codesystem:X"},
            400,
            "invalid",
            "system",
        ),
        ({"code": " NEW", "display": "n"}, 400, "invalid", "code"),
        (
            {"resourceType": "Patient", "code": "NEW", "display": "n"},
            400,
            "invalid",
            "resourceType",
        ),
    ],
)
def test_bad_concepts_are_refused_all_or_nothing(
    client, engine, allergies, body, status, code, needle
):
    response = client.post(f"{BASE}/codesystem/ALLERGIES/concept/", json=body)
    assert response.status_code == status, response.text
    issue = response.json()["issue"][0]
    assert issue["code"] == code
    assert needle in issue["diagnostics"] + " ".join(issue.get("expression", []))
    assert count_rows(engine, dwh_thesaurus_data) == 3
    assert client.get(f"{BASE}/codesystem/ALLERGIES/").json()["meta"]["versionId"] == "1"


def test_concept_routes_on_the_standard_path(client, allergies):
    assert client.get(f"{BASE}/CodeSystem/1/concept/LATEX").json()["id"] == "3"
    response = client.post(f"{BASE}/CodeSystem/1/concept", json={"code": "NEW", "display": "n"})
    assert response.status_code == 201
    response = client.patch(f"{BASE}/CodeSystem/1/concept/NEW", json={"display": "New one"})
    assert response.json() == {
        "id": "4",
        "code": "NEW",
        "display": "New one",
        "system": "urn:codoc:fhir:codesystem:ALLERGIES",
    }
    assert client.delete(f"{BASE}/CodeSystem/1/concept/4/").status_code == 204
    assert client.get(f"{BASE}/CodeSystem/ALLERGIES/concept/LATEX").status_code == 404


def test_concept_key_is_the_code_before_the_number(client, allergies):
    client.post(f"{BASE}/codesystem/ALLERGIES/concept/", json={"code": "1", "display": "One"})
    assert client.get(f"{BASE}/codesystem/ALLERGIES/concept/1/").json()["display"] == "One"
    assert client.get(f"{BASE}/codesystem/ALLERGIES/concept/2/").json()["code"] == "PEANUT"
    client.post(f"{BASE}/codesystem/", json=thesaurus("OTHER", "Other", "Other"))
    assert client.get(f"{BASE}/codesystem/OTHER/concept/2/").status_code == 404


def test_concept_put_renames_but_never_onto_another_code(client, allergies):
    path = f"{BASE}/codesystem/ALLERGIES/concept/PEANUT/"
    clash = client.put(path, json={"code": "LATEX", "display": "x"})
    assert clash.status_code == 409
    renamed = client.put(path, json={"code": "ARACHIDE", "display": "Peanut allergy"})
    assert renamed.json()["code"] == "ARACHIDE"
    assert codes(client) == ["PENICILLIN", "ARACHIDE", "LATEX"]
    stale = client.put(
        f"{BASE}/codesystem/ALLERGIES/concept/2/",
        json={"display": "y"},
        headers={"If-Match": 'W/"1"'},
    )
    assert stale.status_code == 412


def test_put_with_a_concept_list_replaces_the_concepts(client, engine, allergies):
    body = dict(ALLERGIES, concept=[{"code": "LATEX", "display": "Latex (all forms)"}])
    body["concept"].append({"code": "IODE", "display": "Iodine allergy"})
    response = client.put(f"{BASE}/codesystem/ALLERGIES/", json=body)
    assert response.status_code == 200, response.text
    answered = [(item["id"], item["code"], item["display"]) for item in response.json()["concept"]]
    assert answered == [("3", "LATEX", "Latex (all forms)"), ("4", "IODE", "Iodine allergy")]
    without_concepts = client.put(f"{BASE}/codesystem/ALLERGIES/", json=ALLERGIES)
    assert without_concepts.json()["count"] == 2  # no concept[]: the concepts stay


# --- deletion blocked by use --------------------------------------------------------------------


def test_used_concepts_and_thesauri_cannot_be_deleted(client, engine):
    seed_procedure_context(engine)
    procedure = {
        "resourceType": "Procedure",
        "status": "completed",
        "code": {"coding": [{"code": "COLO001", "display": "Colonoscopy"}]},
        "subject": {"reference": "Patient/1"},
        "performedDateTime": "2024-01-15T14:00:00Z",
    }
    assert client.post(f"{BASE}/procedure/", json=procedure).status_code == 201
    client.post(f"{BASE}/codesystem/Acte/concept/", json={"code": "FREE", "display": "Unused"})
    response = client.delete(f"{BASE}/codesystem/Acte/")
    assert response.status_code == 409
    assert response.json()["issue"][0]["diagnostics"] == "CodeSystem Acte is used by 1 Procedure"
    response = client.delete(f"{BASE}/codesystem/Acte/concept/COLO001/")
    assert response.status_code == 409
    assert response.json()["issue"][0]["code"] == "conflict"
    body = client.get(f"{BASE}/codesystem/Acte/").json()
    body["concept"] = [item for item in body["concept"] if item["code"] == "FREE"]
    assert client.put(f"{BASE}/codesystem/Acte/", json=body).status_code == 409
    assert codes(client, "/codesystem/Acte/") == ["COLO001", "FREE"]
    assert client.delete(f"{BASE}/codesystem/Acte/concept/FREE/").status_code == 204
    assert count_rows(engine, dwh_thesaurus) == 1


def test_concept_found_by_nlp_cannot_be_deleted(client, engine, allergies):
    patient = make_patient(engine)
    document = make_document(engine, patient_num=patient)
    with engine.begin() as conn:
        conn.execute(
            schema.dwh_enrsem.insert().values(
                document_num=document,
                patient_num=patient,
                thesaurus_data_num=3,
                thesaurus_code="ALLERGIES",
                concept_str_found="latex",
                document_date=NOW,
                row_version=1,
            )
        )
    response = client.delete(f"{BASE}/codesystem/ALLERGIES/concept/LATEX/")
    assert response.status_code == 409
    assert "1 Observation" in response.json()["issue"][0]["diagnostics"]
    assert client.delete(f"{BASE}/codesystem/ALLERGIES/").status_code == 409
    assert count_rows(engine, dwh_thesaurus_data) == 3


def test_concept_routes_enforce_token_scopes(make_client):
    from tests.security.tokens import AUTH_ENV, bearer, hs256

    secured = make_client(**AUTH_ENV)
    admin = bearer(hs256("system/*.*", sub="loader"))
    assert secured.post(f"{BASE}/codesystem/", json=ALLERGIES, headers=admin).status_code == 201
    concept = {"code": "LATEX", "display": "Latex allergy"}
    path = f"{BASE}/codesystem/ALLERGIES/concept/"
    assert secured.post(path, json=concept).status_code == 401
    reader = bearer(hs256("system/CodeSystem.read", sub="reader"))
    assert secured.post(path, json=concept, headers=reader).status_code == 403
    patient = bearer(hs256("patient/*.*", sub="someone", patient="1"))
    assert secured.post(path, json=concept, headers=patient).status_code == 403
    assert secured.post(path, json=concept, headers=admin).status_code == 201
    assert secured.get(path + "LATEX/", headers=reader).status_code == 200
    assert secured.delete(path + "LATEX/", headers=reader).status_code == 403


def test_elements_without_column_are_kept_and_concepts_stay_the_tables(client):
    """A CodeSystem answers what was sent (CONTRACT section 9) while its concepts stay those
    of dwh_thesaurus_data: one removed through its route does not come back."""
    body = dict(
        ALLERGIES,
        publisher="Hospital pharmacy",
        version="2024.1",
        contact=[{"name": "Terminology desk", "telecom": [{"system": "email", "value": "t@x"}]}],
        concept=ALLERGY_CONCEPTS,
    )
    created = client.post(f"{BASE}/codesystem/", json=body)
    assert created.status_code == 201, created.text
    read = client.get(f"{BASE}/codesystem/ALLERGIES/").json()
    for name in ("publisher", "version", "contact"):
        assert read[name] == body[name]
    concept = next(c for c in read["concept"] if c["code"] == "PEANUT")
    assert client.delete(f"{BASE}/codesystem/ALLERGIES/concept/{concept['id']}/").status_code in (
        200,
        204,
    )
    assert codes(client) == ["PENICILLIN", "LATEX"]
    assert client.get(f"{BASE}/codesystem/ALLERGIES/").json()["publisher"] == "Hospital pharmacy"
