"""Observation phenotype: api/observation-phenotype.md and guides/semantic-enrichment.md."""

from __future__ import annotations

import base64
import copy

import pytest
from sqlalchemy import select

from codoc_fhir.fhir.errors import Invalid
from codoc_fhir.resources.observation_phenotype import component_values
from codoc_fhir.warehouse.schema import dwh_enrsem, dwh_thesaurus, dwh_thesaurus_data
from tests.factories import NOW, count_rows, make_document, make_patient, make_stay

COMPONENT_SYSTEM = "urn:codoc:fhir:phenotype-component"
DOCUMENT_DATE = "2024-01-12T09:00:00Z"  # make_document's default date

DOCUMENTED = {
    "resourceType": "Observation",
    "status": "final",
    "code": {"coding": [{"code": "I10", "display": "Essential hypertension"}]},
    "subject": {"reference": "Patient/1"},
    "derivedFrom": [{"reference": "DocumentReference/10"}],
    "valueString": "essential hypertension",
    "component": [
        {"code": {"coding": [{"code": "phenotype"}]}, "valueInteger": 1},
        {"code": {"coding": [{"code": "semantic_type"}]}, "valueString": "Disease"},
        {"code": {"coding": [{"code": "tfidf_code_document"}]}, "valueQuantity": {"value": 0.85}},
        {"code": {"coding": [{"code": "count_concept"}]}, "valueInteger": 2},
        {"code": {"coding": [{"code": "count_concept_str_found"}]}, "valueInteger": 1},
    ],
}


def for_ids(body: dict, patient: int, document: int) -> dict:
    """A documented body with the ids the warehouse returned."""
    return dict(
        body,
        subject={"reference": f"Patient/{patient}"},
        derivedFrom=[{"reference": f"DocumentReference/{document}"}],
    )


def enrsem_row(engine, num: int = 1):
    with engine.connect() as conn:
        return conn.execute(select(dwh_enrsem).where(dwh_enrsem.c.enrsem_num == num)).one()


def components(resource: dict) -> dict:
    """component[] as {code: the value element}."""
    found = {}
    for component in resource.get("component", []):
        coding = component["code"]["coding"][0]
        assert coding["system"] == COMPONENT_SYSTEM
        value = {name: item for name, item in component.items() if name.startswith("value")}
        found[coding["code"]] = value
    return found


@pytest.fixture
def context(engine):
    """Patient 1, stay 1 and document 1 (dated 2024-01-12T09:00Z)."""
    patient = make_patient(engine)
    stay = make_stay(engine, patient_num=patient)
    document = make_document(engine, patient_num=patient, stay_num=stay)
    return {"patient": patient, "stay": stay, "document": document}


# --- api/observation-phenotype.md ----------------------------------------------------------


def test_documented_create(client, context, engine):
    body = for_ids(DOCUMENTED, context["patient"], context["document"])
    response = client.post("/v4.3.0/observation/phenotype/", json=body)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["id"] == "phenotype-1"
    assert response.headers["location"].endswith("/v4.3.0/Observation/phenotype-1")
    assert created["identifier"] == [{"use": "official", "value": "phenotype-1"}]
    assert created["status"] == "final"
    assert created["code"]["coding"][0] == {
        "system": "urn:codoc:fhir:codesystem:Phenotypes",
        "code": "I10",
        "display": "Essential hypertension",
    }
    assert created["subject"] == {"reference": "Patient/1"}
    assert created["derivedFrom"] == [{"reference": "DocumentReference/1"}]
    assert created["valueString"] == "essential hypertension"
    assert created["effectiveDateTime"] == DOCUMENT_DATE
    assert components(created) == {
        "phenotype": {"valueInteger": 1},
        "semantic_type": {"valueString": "Disease"},
        "tfidf_code_document": {"valueQuantity": {"value": 0.85}},
        "count_concept": {"valueInteger": 2},
        "count_concept_str_found": {"valueInteger": 1},
        "negation": {"valueBoolean": False},
        "hypothesis": {"valueBoolean": False},
        "family": {"valueBoolean": False},
    }
    row = enrsem_row(engine)
    assert (row.document_num, row.patient_num, row.thesaurus_code) == (1, 1, "Phenotypes")
    assert row.concept_str_found == "essential hypertension"
    assert (row.phenotype, row.semantic_type, row.tfidf_code_document) == (True, "Disease", 0.85)
    assert (row.count_concept, row.count_concept_str_found) == (2, 1)
    assert (row.certainty, row.context, row.hypothesis) == (1, "patient_text", False)


def test_documented_python_variant_and_reads(client, context):
    body = for_ids(DOCUMENTED, 1, 1)
    client.post("/v4.3.0/observation/phenotype/", json=body)
    second = client.post(
        "/v4.3.0/observation/phenotype/", json=dict(body, valueString="hypertension")
    ).json()
    assert second["id"] == "phenotype-2"
    for path in (
        "/v4.3.0/observation/phenotype/2/",
        "/v4.3.0/observation/phenotype/2",
        "/v4.3.0/Observation/phenotype-2",
        "/v4.3.0/observation/phenotype-2/",
    ):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.json()["valueString"] == "hypertension"


def test_post_on_the_observation_type_with_derived_from_is_a_phenotype(client, context):
    for path in ("/v4.3.0/Observation", "/v4.3.0/observation/"):
        response = client.post(path, json=for_ids(DOCUMENTED, 1, 1))
        assert response.status_code == 201
        assert response.json()["id"].startswith("phenotype-")


def test_documented_complete_document_extraction(client, engine):
    patient_id = make_patient(engine)
    document_id = make_document(
        engine, patient_num=patient_id, text="The patient has hypertension and chest pain."
    )
    phenotypes = [
        ("I10", "Essential hypertension", "hypertension", "Disease", 0.85, 2, 1),
        ("R07.9", "Chest pain, unspecified", "chest pain", "Symptom", 0.92, 1, 1),
    ]
    ids = []
    for code, display, text, semantic_type, tfidf, count, count_str_found in phenotypes:
        response = client.post(
            "/v4.3.0/observation/phenotype/",
            json={
                "resourceType": "Observation",
                "status": "final",
                "code": {"coding": [{"code": code, "display": display}]},
                "subject": {"reference": f"Patient/{patient_id}"},
                "derivedFrom": [{"reference": f"DocumentReference/{document_id}"}],
                "valueString": text,
                "component": [
                    {"code": {"coding": [{"code": "phenotype"}]}, "valueInteger": 1},
                    {"code": {"coding": [{"code": "semantic_type"}]}, "valueString": semantic_type},
                    {
                        "code": {"coding": [{"code": "tfidf_code_document"}]},
                        "valueQuantity": {"value": tfidf},
                    },
                    {"code": {"coding": [{"code": "count_concept"}]}, "valueInteger": count},
                    {
                        "code": {"coding": [{"code": "count_concept_str_found"}]},
                        "valueInteger": count_str_found,
                    },
                ],
            },
        )
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
        assert components(response.json())["tfidf_code_document"] == {
            "valueQuantity": {"value": tfidf}
        }
    assert ids == ["phenotype-1", "phenotype-2"]
    chest_pain = client.get("/v4.3.0/observation/phenotype/2/").json()
    assert chest_pain["code"]["coding"][0]["display"] == "Chest pain, unspecified"


def test_documented_semantic_type_and_relevance(client, engine):
    make_patient(engine)
    patient_id = make_patient(engine, lastname="Other", ipp="IPP24")
    document_id = make_document(engine, patient_num=patient_id)
    phenotype = {
        "resourceType": "Observation",
        "status": "final",
        "code": {
            "coding": [
                {"code": "J06.9", "display": "Acute upper respiratory infection, unspecified"}
            ]
        },
        "subject": {"reference": f"Patient/{patient_id}"},
        "derivedFrom": [{"reference": f"DocumentReference/{document_id}"}],
        "valueString": "upper respiratory infection",
        "component": [
            {"code": {"coding": [{"code": "semantic_type"}]}, "valueString": "Disease"},
            {
                "code": {"coding": [{"code": "tfidf_code_document"}]},
                "valueQuantity": {"value": 0.78},
            },
            {"code": {"coding": [{"code": "count_concept"}]}, "valueInteger": 1},
        ],
    }
    response = client.post("/v4.3.0/observation/phenotype/", json=phenotype)
    assert response.status_code == 201
    found = components(response.json())
    assert "phenotype" not in found and "count_concept_str_found" not in found
    assert found["count_concept"] == {"valueInteger": 1}
    assert enrsem_row(engine).phenotype is None


# --- guides/semantic-enrichment.md --------------------------------------------------------

CLINICAL_TEXT = """
    <h1>Cardiology Consultation</h1>
    <h2>Medical History</h2>
    <p>Patient has arterial hypertension for 10 years,
    as well as type 2 diabetes diagnosed 5 years ago.
    Family history of coronary disease (father died of heart attack).</p>

    <h2>Reason for Consultation</h2>
    <p>Chest pain on exertion for 3 weeks,
    accompanied by dyspnea.</p>
    """

FOUND = [
    (
        "HYPERTENSION",
        "Arterial hypertension",
        "arterial hypertension",
        "DISEASE_OR_SYNDROME",
        0.85,
        1,
        1,
    ),
    ("DIABETE", "Diabetes", "type 2 diabetes", "DISEASE_OR_SYNDROME", 0.78, 2, 2),
    ("DOULEUR_THORACIQUE", "Chest pain", "chest pain", "SIGN_OR_SYMPTOM", 0.92, 1, 1),
    ("DYSPNEE", "Dyspnea", "dyspnea", "SIGN_OR_SYMPTOM", 0.88, 1, 1),
]


def guide_phenotype(
    patient_id, document_id, code, display, value, semantic_type, tfidf, count, count_found
):
    """The body the guide's step 3 and its create_phenotype() send."""
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {
            "coding": [
                {
                    "system": "http://codoc.com/fhir/codesystem/PHENOTYPES",
                    "code": code,
                    "display": display,
                }
            ]
        },
        "subject": {"reference": f"Patient/{patient_id}"},
        "derivedFrom": [{"reference": f"DocumentReference/{document_id}"}],
        "effectiveDateTime": "2024-11-05T10:00:00Z",
        "valueString": value,
        "component": [
            {"code": {"text": "phenotype"}, "valueString": value},
            {"code": {"text": "semantic_type"}, "valueString": semantic_type},
            {"code": {"text": "tfidf_code_document"}, "valueDecimal": tfidf},
            {"code": {"text": "count_concept"}, "valueInteger": count},
            {"code": {"text": "count_concept_str_found"}, "valueInteger": count_found},
        ],
    }


def seed_guide_thesaurus(engine) -> None:
    """Step 1 (CodeSystem PHENOTYPES and its five concepts), written directly."""
    concepts = [
        ("HYPERTENSION", "Arterial hypertension"),
        ("DIABETE", "Diabetes"),
        ("DOULEUR_THORACIQUE", "Chest pain"),
        ("DYSPNEE", "Dyspnea"),
        ("OBESITE", "Obesity"),
    ]
    with engine.begin() as conn:
        conn.execute(
            dwh_thesaurus.insert().values(
                thesaurus_code="PHENOTYPES", name="Phenotypes", label="Phenotypes Thesaurus"
            )
        )
        conn.execute(
            dwh_thesaurus_data.insert(),
            [
                {"thesaurus_code": "PHENOTYPES", "concept_code": code, "concept_str": label}
                for code, label in concepts
            ],
        )


def guide_document(client, engine) -> tuple[int, str]:
    """Step 2: the patient and stay (factories), the document through the API."""
    patient_id = make_patient(engine, lastname="Smith", firstname="Peter", ipp="IPP555")
    stay_id = make_stay(engine, patient_num=patient_id, entry_date=NOW)
    document = client.post(
        "/v4.3.0/documentreference/",
        json={
            "resourceType": "DocumentReference",
            "status": "current",
            "subject": {"reference": f"Patient/{patient_id}"},
            "context": {"encounter": [{"reference": f"Encounter/{stay_id}"}]},
            "date": "2024-11-05T10:00:00Z",
            "content": [
                {
                    "attachment": {
                        "contentType": "text/html",
                        "data": base64.b64encode(CLINICAL_TEXT.encode()).decode(),
                        "title": "Cardiology Consultation",
                    }
                }
            ],
        },
    )
    assert document.status_code == 201
    return patient_id, document.json()["id"]


def test_semantic_enrichment_guide_replayed(make_client, engine):
    client = make_client(THESAURUS_CODE_PHENOTYPE="PHENOTYPES", CODOC_STRICT_CODES="true")
    seed_guide_thesaurus(engine)
    patient_id, document_id = guide_document(client, engine)
    created = []
    for found in FOUND:
        response = client.post(
            "/v4.3.0/observation/phenotype/", json=guide_phenotype(patient_id, document_id, *found)
        )
        assert response.status_code == 201, response.text
        created.append(response.json())
    assert [item["id"] for item in created] == [f"phenotype-{n}" for n in range(1, 5)]
    assert count_rows(engine, dwh_thesaurus_data) == 5  # the guide's concepts were used
    # step 4: read one back, as the guide prints it
    pheno = client.get("/v4.3.0/observation/phenotype/1/").json()
    assert pheno["code"]["coding"][0]["code"] == "HYPERTENSION"
    assert pheno["code"]["coding"][0]["display"] == "Arterial hypertension"
    assert pheno["valueString"] == "arterial hypertension"
    assert pheno["effectiveDateTime"] == "2024-11-05T10:00:00Z"
    printed = {}
    for component in pheno.get("component", []):
        code = component["code"]
        comp_code = code.get("text", code.get("coding", [{}])[0].get("code", ""))
        printed[comp_code] = component.get(
            "valueString", component.get("valueDecimal", component.get("valueInteger"))
        )
    assert printed["phenotype"] == 1
    assert printed["semantic_type"] == "DISEASE_OR_SYNDROME"
    assert printed["count_concept"] == 1
    diabetes = components(created[1])
    assert diabetes["tfidf_code_document"] == {"valueQuantity": {"value": 0.78}}
    assert diabetes["count_concept_str_found"] == {"valueInteger": 2}


@pytest.mark.parametrize(
    ("value", "code", "semantic_type"),
    [
        ("no diabetes", "DIABETE", "DISEASE_OR_SYNDROME"),
        ("suspected unstable angina", "ANGOR", "DISEASE_OR_SYNDROME"),
        ("family history of coronary disease", "MALADIE_CORONARIENNE", "DISEASE_OR_SYNDROME"),
    ],
)
def test_semantic_enrichment_guide_contexts(client, engine, value, code, semantic_type):
    """The negation / hypothesis / family fragments, completed with subject and document."""
    patient_id, document_id = guide_document(client, engine)
    fragment = {
        "valueString": value,
        "code": {"coding": [{"code": code}]},
        "component": [
            {"code": {"text": "phenotype"}, "valueString": value},
            {"code": {"text": "semantic_type"}, "valueString": semantic_type},
        ],
    }
    body = dict(
        fragment,
        resourceType="Observation",
        status="final",
        subject={"reference": f"Patient/{patient_id}"},
        derivedFrom=[{"reference": f"DocumentReference/{document_id}"}],
    )
    response = client.post("/v4.3.0/observation/phenotype/", json=body)
    assert response.status_code == 201, response.text
    assert response.json()["code"]["coding"][0]["code"] == code
    assert components(response.json())["phenotype"] == {"valueInteger": 1}


def test_semantic_enrichment_complete_script(client, engine):
    patient_id, document_id = guide_document(client, engine)
    pheno1 = client.post(
        "/v4.3.0/observation/phenotype/",
        json=guide_phenotype(
            patient_id,
            document_id,
            "HYPERTENSION",
            "Arterial hypertension",
            "arterial hypertension",
            "DISEASE_OR_SYNDROME",
            0.85,
            1,
            1,
        ),
    ).json()
    assert pheno1["id"] == "phenotype-1"
    assert pheno1["code"]["coding"][0]["system"] == "urn:codoc:fhir:codesystem:Phenotypes"
    with engine.connect() as conn:
        thesauri = conn.execute(select(dwh_thesaurus.c.thesaurus_code)).scalars().all()
    assert thesauri == ["Phenotypes"]


# --- round trips -----------------------------------------------------------------------------

FLAGS_BY_CODING = [
    {"code": {"coding": [{"code": "phenotype"}]}, "valueBoolean": False},
    {"code": {"coding": [{"code": "semantic_type"}]}, "valueString": "Finding"},
    {"code": {"coding": [{"code": "tfidf_code_document"}]}, "valueQuantity": {"value": 0.125}},
    {"code": {"coding": [{"code": "count_concept"}]}, "valueInteger": 0},
    {"code": {"coding": [{"code": "count_concept_str_found"}]}, "valueInteger": 7},
    {"code": {"coding": [{"code": "negation"}]}, "valueBoolean": True},
    {"code": {"coding": [{"code": "hypothesis"}]}, "valueBoolean": True},
    {"code": {"coding": [{"code": "family"}]}, "valueBoolean": True},
]
FLAGS_BY_TEXT = [
    {"code": {"text": "family"}, "valueBoolean": True},
    {"code": {"text": "hypothesis"}, "valueBoolean": True},
    {"code": {"text": "negation"}, "valueBoolean": True},
    {"code": {"text": "phenotype"}, "valueInteger": 0},
    {"code": {"text": "semantic_type"}, "valueString": "Finding"},
    {"code": {"text": "tfidf_code_document"}, "valueDecimal": 0.125},
    {"code": {"text": "count_concept"}, "valueInteger": 0},
    {"code": {"text": "count_concept_str_found"}, "valueInteger": 7},
]


@pytest.mark.parametrize("sent", [FLAGS_BY_CODING, FLAGS_BY_TEXT], ids=["coding", "text"])
def test_flags_and_scores_survive_create_read_put_read(client, context, engine, sent):
    body = dict(for_ids(DOCUMENTED, 1, 1), component=sent, valueString="no family diabetes")
    created = client.post("/v4.3.0/observation/phenotype/", json=body).json()
    read = client.get("/v4.3.0/observation/phenotype/1/").json()
    put = client.put("/v4.3.0/observation/phenotype/1/", json=copy.deepcopy(read)).json()
    again = client.get("/v4.3.0/Observation/phenotype-1").json()
    assert put["meta"]["versionId"] == "2"
    for answer in (created, read, put, again):
        answer.pop("meta")
    assert created == read == put == again
    assert components(again) == {
        "phenotype": {"valueInteger": 0},
        "semantic_type": {"valueString": "Finding"},
        "tfidf_code_document": {"valueQuantity": {"value": 0.125}},
        "count_concept": {"valueInteger": 0},
        "count_concept_str_found": {"valueInteger": 7},
        "negation": {"valueBoolean": True},
        "hypothesis": {"valueBoolean": True},
        "family": {"valueBoolean": True},
    }
    row = enrsem_row(engine)
    assert (row.certainty, row.context, row.hypothesis, row.phenotype) == (
        -1,
        "family_text",
        True,
        False,
    )


def test_identifier_patch_and_delete(client, context, engine):
    body = dict(for_ids(DOCUMENTED, 1, 1), identifier=[{"system": "urn:nlp", "value": "E-9"}])
    created = client.post("/v4.3.0/observation/phenotype/", json=body).json()
    assert created["identifier"][1] == {"system": "urn:nlp", "value": "E-9"}
    assert enrsem_row(engine).id_enrsem_source == "E-9"
    patched = client.patch("/v4.3.0/observation/phenotype/1/", json={"valueString": "HTA"})
    assert patched.status_code == 200
    assert patched.json()["valueString"] == "HTA"
    assert patched.json()["component"] == created["component"]
    assert client.delete("/v4.3.0/observation/phenotype/1/").status_code == 204
    assert client.get("/v4.3.0/observation/phenotype/1/").status_code == 410
    assert client.delete("/v4.3.0/documentreference/1/").status_code == 204


def test_row_of_another_thesaurus_is_404_here(make_client, context):
    other = make_client(THESAURUS_CODE_PHENOTYPE="OtherNLP")
    assert (
        other.post("/v4.3.0/observation/phenotype/", json=for_ids(DOCUMENTED, 1, 1)).status_code
        == 201
    )
    assert make_client().get("/v4.3.0/observation/phenotype/1/").status_code == 404


def test_strict_codes_refuse_an_unknown_code(make_client, context, engine):
    strict = make_client(CODOC_STRICT_CODES="true")
    response = strict.post("/v4.3.0/observation/phenotype/", json=for_ids(DOCUMENTED, 1, 1))
    assert response.status_code == 400
    assert count_rows(engine, dwh_enrsem) == 0


# --- bad input ---------------------------------------------------------------------------------

BASE = for_ids(DOCUMENTED, 1, 1)


def _without(field: str) -> dict:
    return {name: value for name, value in BASE.items() if name != field}


def _component(code: str, **value) -> dict:
    return dict(BASE, component=[{"code": {"text": code}, **value}])


BAD_INPUT = [
    (_without("status"), "required", "status"),
    (_without("code"), "required", "code"),
    (_without("subject"), "required", "subject"),
    (_without("derivedFrom"), "required", "derivedFrom"),
    (_without("valueString"), "required", "valueString"),
    (dict(BASE, status="done"), "invalid", "status"),
    (dict(BASE, code={"text": "no coding"}), "required", "code"),
    (dict(BASE, derivedFrom=[{"reference": "DocumentReference/999"}]), "not-found", "999"),
    (dict(BASE, derivedFrom=[{"reference": "Patient/1"}]), "invalid", "DocumentReference"),
    (dict(BASE, subject={"reference": "Patient/999"}), "not-found", "Patient with ID 999"),
    (dict(BASE, valueString="x" * 2001), "invalid", "valueString"),
    (dict(BASE, code={"coding": [{"code": "C" * 101}]}), "invalid", "code.coding[0].code"),
    (dict(BASE, code={"coding": [{"code": "C", "display": "D" * 2001}]}), "invalid", "display"),
    (dict(BASE, effectiveDateTime="12/01/2024"), "invalid", "date"),
    (_component("phenotype", valueInteger=2), "invalid", "phenotype"),
    (_component("phenotype", valueString="something else"), "invalid", "phenotype"),
    (_component("semantic_type", valueInteger=3), "invalid", "semantic_type"),
    (_component("tfidf_code_document", valueString="0.8"), "invalid", "tfidf"),
    (_component("tfidf_code_document", valueInteger=1), "invalid", "tfidf"),
    (_component("count_concept", valueInteger=-1), "invalid", "count_concept"),
    (_component("count_concept", valueQuantity={"value": 2}), "invalid", "count_concept"),
    (_component("count_concept_str_found", valueBoolean=True), "invalid", "count_concept"),
    (_component("negation", valueInteger=1), "invalid", "negation"),
    (_component("hypothesis", valueString="yes"), "invalid", "hypothesis"),
    (_component("family", valueInteger=0), "invalid", "family"),
    (_component("negation", valueBoolean=True, valueInteger=1), "invalid", "more than one"),
    (
        dict(BASE, component=[{"code": {"text": "negation"}, "valueBoolean": True}] * 2),
        "invalid",
        "twice",
    ),
]


@pytest.mark.parametrize(("body", "code", "needle"), BAD_INPUT)
def test_bad_input_is_a_400_outcome_and_stores_nothing(client, context, engine, body, code, needle):
    response = client.post("/v4.3.0/observation/phenotype/", json=body)
    assert response.status_code == 400, response.text
    issue = response.json()["issue"][0]
    assert issue["code"] == code
    assert needle in issue["diagnostics"]
    assert count_rows(engine, dwh_enrsem) == 0
    assert count_rows(engine, dwh_thesaurus_data) == 0


@pytest.mark.parametrize(("body", "code", "needle"), BAD_INPUT[::4])
def test_bad_put_leaves_the_phenotype_unchanged(client, context, engine, body, code, needle):
    before = client.post("/v4.3.0/observation/phenotype/", json=BASE).json()
    response = client.put("/v4.3.0/observation/phenotype/1/", json=body)
    assert response.status_code == 400
    assert client.get("/v4.3.0/observation/phenotype/1/").json() == before


def test_document_of_another_patient_is_refused(client, context, engine):
    other = make_patient(engine, lastname="Other", ipp="IPP-OTHER")
    make_document(engine, patient_num=other)
    response = client.post(
        "/v4.3.0/observation/phenotype/", json=for_ids(DOCUMENTED, context["patient"], 2)
    )
    assert response.status_code == 400
    issue = response.json()["issue"][0]
    assert issue["expression"] == ["Observation.derivedFrom[0]"]
    assert "another patient" in issue["diagnostics"]
    assert count_rows(engine, dwh_enrsem) == 0


def test_unstorable_tfidf_is_refused():
    with pytest.raises(Invalid, match="storable"):
        component_values(_component("tfidf_code_document", valueDecimal=10**400), "x")


def test_a_phenotype_sent_with_another_value_answers_it_from_the_create_on(client, context):
    """A phenotype scored by a tool (valueQuantity, no valueString): the found text is the
    concept's, and the value comes back as sent, in the create's answer as in reads."""
    documented = for_ids(DOCUMENTED, context["patient"], context["document"])
    body = {
        key: value for key, value in documented.items() if key not in ("valueString", "component")
    }
    body["valueQuantity"] = {"value": 0.87, "unit": "score"}
    created = client.post("/v4.3.0/observation/phenotype/", json=body)
    assert created.status_code == 201, created.text
    read = client.get(f"/v4.3.0/Observation/{created.json()['id']}").json()
    for answer in (created.json(), read):
        assert answer["valueQuantity"] == {"value": 0.87, "unit": "score"}
        assert "valueString" not in answer
