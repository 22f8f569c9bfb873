"""guides/semantic-enrichment.md replayed in order, everything through the API: the PHENOTYPES
thesaurus and its concepts, patient, stay, document, four phenotypes, the read-back, the
negation / hypothesis / family fragments, and the complete script's create_phenotype().

The guide creates its concepts in a CodeSystem `PHENOTYPES`; phenotypes are bound to
THESAURUS_CODE_PHENOTYPE (default `Phenotypes`), so the server runs with
THESAURUS_CODE_PHENOTYPE=PHENOTYPES, as docs/resources/observation-phenotype.md explains."""

from __future__ import annotations

import base64

import pytest
from sqlalchemy import select

from codoc_fhir.warehouse.schema import dwh_enrsem, dwh_text, dwh_thesaurus
from tests.factories import count_rows
from tests.guides.steps import BASE, expect, issue

CONCEPTS = [
    {"code": "HYPERTENSION", "display": "Arterial hypertension"},
    {"code": "DIABETE", "display": "Diabetes"},
    {"code": "DOULEUR_THORACIQUE", "display": "Chest pain"},
    {"code": "DYSPNEE", "display": "Dyspnea"},
    {"code": "OBESITE", "display": "Obesity"},
]
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
    ("HYPERTENSION", "Arterial hypertension", "arterial hypertension", "DISEASE_OR_SYNDROME",
     0.85, 1, 1),
    ("DIABETE", "Diabetes", "type 2 diabetes", "DISEASE_OR_SYNDROME", 0.78, 2, 2),
    ("DOULEUR_THORACIQUE", "Chest pain", "chest pain", "SIGN_OR_SYMPTOM", 0.92, 1, 1),
    ("DYSPNEE", "Dyspnea", "dyspnea", "SIGN_OR_SYMPTOM", 0.88, 1, 1),
]  # fmt: skip
CONTEXTS = [
    ("no diabetes", "DIABETE"),
    ("suspected unstable angina", "ANGOR"),
    ("family history of coronary disease", "MALADIE_CORONARIENNE"),
]


GUIDE_SYSTEM = "http://codoc.com/fhir/codesystem/PHENOTYPES"


def phenotype(
    patient_id, document_id, code, display, value, semantic_type, tfidf, count, count_found,
    system=GUIDE_SYSTEM,
) -> dict:  # fmt: skip
    """Step 3's body (the complete script's create_phenotype() sends no system)."""
    coding = {"code": code, "display": display}
    if system:
        coding["system"] = system
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [coding]},
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


def printed_components(resource: dict) -> dict:
    """Step 4's loop: each component's code and value, as the guide prints them."""
    printed = {}
    for component in resource.get("component", []):
        code = component["code"]
        comp_code = code.get("text", code.get("coding", [{}])[0].get("code", ""))
        printed[comp_code] = component.get(
            "valueString", component.get("valueDecimal", component.get("valueInteger"))
        )
    return printed


def phenotype_path(phenotype_id: str) -> str:
    """The guide reads /observation/phenotype/{n}/ with a bare number; the server's id is
    `phenotype-N` (the contract's prefix), so the number is taken from the returned id."""
    return f"{BASE}/observation/phenotype/{phenotype_id.removeprefix('phenotype-')}/"


@pytest.fixture
def guide_client(make_client):
    return make_client(THESAURUS_CODE_PHENOTYPE="PHENOTYPES")


def create_thesaurus(client) -> None:
    """Step 1: the thesaurus, then its five concepts in one batch."""
    thesaurus = expect(
        client.post(
            f"{BASE}/codesystem/",
            json={
                "resourceType": "CodeSystem",
                "url": "urn:codoc:fhir:codesystem:PHENOTYPES",
                "identifier": [
                    {"use": "official", "value": "1"},
                    {"use": "usual", "value": "PHENOTYPES"},
                ],
                "name": "Phenotypes",
                "title": "Phenotypes Thesaurus",
                "status": "active",
                "content": "complete",
            },
        ),
        201,
    )
    assert thesaurus["url"] == "urn:codoc:fhir:codesystem:PHENOTYPES"
    batch = expect(
        client.post(f"{BASE}/codesystem/PHENOTYPES/concept/", json={"concept": CONCEPTS}), 200
    )
    assert len(batch["concept"]) == 5


def create_document(client) -> tuple[str, str]:
    """Step 2: patient, stay and the consultation document; returns (patient, document)."""
    patient_id = expect(
        client.post(
            f"{BASE}/patient/",
            json={
                "resourceType": "Patient",
                "identifier": [{"value": "IPP555"}],
                "name": [{"family": "Smith", "given": ["Peter"]}],
                "gender": "male",
                "birthDate": "1960-05-15",
            },
        ),
        201,
    )["id"]
    stay_id = expect(
        client.post(
            f"{BASE}/encounter/",
            json={
                "resourceType": "Encounter",
                "status": "in-progress",
                "class": {"code": "IMP"},
                "subject": {"reference": f"Patient/{patient_id}"},
                "period": {"start": "2024-11-05T08:00:00Z"},
            },
        ),
        201,
    )["id"]
    document = expect(
        client.post(
            f"{BASE}/documentreference/",
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
        ),
        201,
    )
    return patient_id, document["id"]


def test_semantic_enrichment_guide_replayed_in_order(guide_client, engine):
    client = guide_client
    create_thesaurus(client)
    patient_id, document_id = create_document(client)
    # "Codoc Text": the decoded plain text is stored with the document, for NLP
    with engine.connect() as conn:
        text = conn.execute(select(dwh_text.c.text)).scalar_one()
    assert "arterial hypertension" in text
    assert "<p>" not in text

    # step 3: the four phenotypes found in the text
    created = [
        expect(
            client.post(
                f"{BASE}/observation/phenotype/",
                json=phenotype(patient_id, document_id, *found),
            ),
            201,
        )
        for found in FOUND
    ]
    for resource, (code, display, value, *_rest) in zip(created, FOUND, strict=True):
        assert resource["id"].startswith("phenotype-")
        assert resource["status"] == "final"
        assert resource["code"]["coding"][0] == {
            "system": "urn:codoc:fhir:codesystem:PHENOTYPES",
            "code": code,
            "display": display,
        }
        assert resource["valueString"] == value
        assert resource["derivedFrom"] == [{"reference": f"DocumentReference/{document_id}"}]
    # the guide's concepts were used: no concept created, no other thesaurus
    thesaurus = expect(client.get(f"{BASE}/codesystem/PHENOTYPES/"), 200)
    assert thesaurus["count"] == 5
    assert count_rows(engine, dwh_thesaurus) == 1

    # step 4: read the first phenotype back by the id the server returned. The components
    # come back in the canonical form (coding code, `phenotype` as valueInteger 1,
    # tfidf as valueQuantity), so the guide's printing loop sees these values:
    pheno = expect(client.get(phenotype_path(created[0]["id"])), 200)
    assert pheno["code"]["coding"][0]["code"] == "HYPERTENSION"
    assert pheno["code"]["coding"][0]["display"] == "Arterial hypertension"
    assert pheno["valueString"] == "arterial hypertension"
    assert pheno["effectiveDateTime"] == "2024-11-05T10:00:00Z"
    printed = printed_components(pheno)
    assert printed["phenotype"] == 1
    assert printed["semantic_type"] == "DISEASE_OR_SYNDROME"
    assert printed["count_concept"] == 1
    assert printed["count_concept_str_found"] == 1
    tfidf = next(
        c for c in pheno["component"] if c["code"]["coding"][0]["code"] == "tfidf_code_document"
    )
    assert tfidf["valueQuantity"]["value"] == 0.85

    # "Managing Medical Contexts": the three fragments, completed with status, subject and
    # derivedFrom (required); ANGOR and MALADIE_CORONARIENNE are not in the thesaurus and are
    # created on first use
    for value, code in CONTEXTS:
        body = {
            "resourceType": "Observation",
            "status": "final",
            "valueString": value,
            "code": {"coding": [{"code": code}]},
            "subject": {"reference": f"Patient/{patient_id}"},
            "derivedFrom": [{"reference": f"DocumentReference/{document_id}"}],
            "component": [
                {"code": {"text": "phenotype"}, "valueString": value},
                {"code": {"text": "semantic_type"}, "valueString": "DISEASE_OR_SYNDROME"},
            ],
        }
        resource = expect(client.post(f"{BASE}/observation/phenotype/", json=body), 201)
        assert resource["code"]["coding"][0]["code"] == code
        assert resource["valueString"] == value
    thesaurus = expect(client.get(f"{BASE}/codesystem/PHENOTYPES/"), 200)
    assert [c["code"] for c in thesaurus["concept"][5:]] == ["ANGOR", "MALADIE_CORONARIENNE"]
    assert count_rows(engine, dwh_enrsem) == 7

    # the phenotypes block the deletion of their document (derivedFrom is required)
    issue(client.delete(f"{BASE}/documentreference/{document_id}/"), 409, "conflict")


def test_semantic_enrichment_complete_script(guide_client, engine):
    """create_phenotype() of the complete script, with the ids returned by steps 1 and 2
    instead of the guide's hard-coded 123 and 456."""
    client = guide_client
    create_thesaurus(client)
    patient_id, document_id = create_document(client)
    pheno1 = expect(
        client.post(
            f"{BASE}/observation/phenotype/",
            json=phenotype(patient_id, document_id, *FOUND[0], system=None),
        ),
        201,
    )
    assert pheno1["id"].startswith("phenotype-")
    assert pheno1["code"]["coding"][0]["system"] == "urn:codoc:fhir:codesystem:PHENOTYPES"
    assert pheno1["subject"] == {"reference": f"Patient/{patient_id}"}
    # the answer goes back unchanged with PUT
    again = expect(client.put(phenotype_path(pheno1["id"]), json=pheno1), 200)
    assert again["component"] == pheno1["component"]
    assert again["meta"]["versionId"] == "2"
