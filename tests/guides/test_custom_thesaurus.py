"""guides/custom-thesaurus.md replayed in order: ALLERGIES (create, one concept, a batch,
read, update, delete), the COVID_SYMPTOMES example and its observation, and the two
"practical use cases"."""

from __future__ import annotations

from sqlalchemy import select

from codoc_fhir.warehouse.schema import dwh_thesaurus, dwh_thesaurus_data
from tests.factories import count_rows
from tests.guides.steps import BASE, expect, issue

ALLERGY_CONCEPTS = [
    {"code": "PENICILLINE", "display": "Penicillin allergy"},
    {"code": "IODE", "display": "Iodine allergy"},
    {"code": "LATEX", "display": "Latex allergy"},
    {"code": "ARACHIDE", "display": "Peanut allergy"},
    {"code": "GLUTEN", "display": "Gluten intolerance"},
]
SYMPTOMS = [
    {"code": "FIEVRE", "display": "Fever > 38°C"},
    {"code": "TOUX", "display": "Persistent dry cough"},
    {"code": "DYSPNEE", "display": "Breathing difficulties"},
    {"code": "ANOSMIE", "display": "Loss of smell"},
    {"code": "AGUEUSIE", "display": "Loss of taste"},
    {"code": "FATIGUE", "display": "Severe fatigue"},
    {"code": "CEPHALEE", "display": "Headache"},
    {"code": "MYALGIE", "display": "Muscle pain"},
    {"code": "DIARRHEE", "display": "Diarrhea"},
    {"code": "RHINORRHEE", "display": "Runny nose"},
]


def codesystem(code: str, name: str, title: str, **extra) -> dict:
    """The guide's CodeSystem bodies (each sends an official identifier "1": ignored)."""
    return {
        "resourceType": "CodeSystem",
        "url": f"urn:codoc:fhir:codesystem:{code}",
        "identifier": [{"use": "official", "value": "1"}, {"use": "usual", "value": code}],
        "name": name,
        "title": title,
        "status": "active",
        "content": "complete",
        **extra,
    }


def concept_codes(engine, thesaurus: str) -> list[str]:
    """The concept codes stored for a thesaurus, in creation order."""
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(dwh_thesaurus_data.c.concept_code)
                .where(dwh_thesaurus_data.c.thesaurus_code == thesaurus)
                .order_by(dwh_thesaurus_data.c.thesaurus_data_num)
            ).scalars()
        )


def test_allergies_thesaurus_replayed_in_order(client, engine):
    # create the empty thesaurus
    thesaurus = expect(
        client.post(
            f"{BASE}/codesystem/",
            json=codesystem("ALLERGIES", "Allergies", "Allergies Thesaurus"),
        ),
        201,
    )
    assert thesaurus["name"] == "Allergies"
    assert thesaurus["title"] == "Allergies Thesaurus"
    assert thesaurus["url"] == "urn:codoc:fhir:codesystem:ALLERGIES"
    assert thesaurus["identifier"][0] == {"use": "official", "value": thesaurus["id"]}
    assert thesaurus["identifier"][1]["value"] == "ALLERGIES"
    assert thesaurus["count"] == 0

    # add a single concept: 201, the concept
    concept = expect(
        client.post(f"{BASE}/codesystem/ALLERGIES/concept/", json=ALLERGY_CONCEPTS[0]), 201
    )
    assert concept["code"] == "PENICILLINE"
    assert concept["display"] == "Penicillin allergy"

    # the batch repeats PENICILLINE, added just before: the contract makes a batch with a
    # code already there a 409, all or nothing (the guide expects 200)...
    issue(
        client.post(f"{BASE}/codesystem/ALLERGIES/concept/", json={"concept": ALLERGY_CONCEPTS}),
        409,
        "duplicate",
    )
    assert concept_codes(engine, "ALLERGIES") == ["PENICILLINE"]
    # ...so a user sends the batch again without it: 200, as the guide checks
    added = expect(
        client.post(
            f"{BASE}/codesystem/ALLERGIES/concept/", json={"concept": ALLERGY_CONCEPTS[1:]}
        ),
        200,
    )
    assert [item["code"] for item in added["concept"]] == ["IODE", "LATEX", "ARACHIDE", "GLUTEN"]

    # retrieve the complete thesaurus
    thesaurus = expect(client.get(f"{BASE}/codesystem/ALLERGIES/"), 200)
    assert thesaurus["name"] == "Allergies"
    assert thesaurus["status"] == "active"
    assert [(c["code"], c["display"]) for c in thesaurus["concept"]] == [
        (c["code"], c["display"]) for c in ALLERGY_CONCEPTS
    ]

    # update: new name; the concept list becomes exactly the two concepts sent
    updated = expect(
        client.put(
            f"{BASE}/codesystem/ALLERGIES/",
            json=codesystem(
                "ALLERGIES",
                "Allergies and intolerances",
                "Allergies Thesaurus",
                concept=ALLERGY_CONCEPTS[:2],
            ),
        ),
        200,
    )
    assert updated["name"] == "Allergies and intolerances"
    assert [c["code"] for c in updated["concept"]] == ["PENICILLINE", "IODE"]
    assert updated["count"] == 2
    assert concept_codes(engine, "ALLERGIES") == ["PENICILLINE", "IODE"]

    # delete: nothing uses its codes -> 204, thesaurus and concepts gone
    assert expect(client.delete(f"{BASE}/codesystem/ALLERGIES/"), 204) is None
    issue(client.get(f"{BASE}/codesystem/ALLERGIES/"), 404, "not-found")
    assert count_rows(engine, dwh_thesaurus) == 0
    assert count_rows(engine, dwh_thesaurus_data) == 0


def test_covid_symptoms_example_and_its_observation(client, engine):
    covid = expect(
        client.post(
            f"{BASE}/codesystem/",
            json=codesystem("COVID_SYMPTOMES", "COVID-19 Symptoms", "COVID-19 Symptoms"),
        ),
        201,
    )
    assert covid["name"] == "COVID-19 Symptoms"
    expect(
        client.post(f"{BASE}/codesystem/COVID_SYMPTOMES/concept/", json={"concept": SYMPTOMS}),
        200,
    )
    thesaurus = expect(client.get(f"{BASE}/codesystem/COVID_SYMPTOMES/"), 200)
    assert thesaurus["name"] == "COVID-19 Symptoms"
    assert thesaurus["identifier"][1]["value"] == "COVID_SYMPTOMES"
    assert len(thesaurus["concept"]) == 10
    assert [(c["code"], c["display"]) for c in thesaurus["concept"]] == [
        (c["code"], c["display"]) for c in SYMPTOMS
    ]

    # "Use the Thesaurus in Observations": the guide's subject Patient/123 is replaced by a
    # patient created here
    patient_id = expect(
        client.post(
            f"{BASE}/patient/",
            json={
                "resourceType": "Patient",
                "identifier": [{"value": "IPP123"}],
                "gender": "female",
                "birthDate": "1990",
            },
        ),
        201,
    )["id"]
    sent_coding = {
        "system": "http://codoc.com/fhir/codesystem/COVID_SYMPTOMES",
        "code": "FIEVRE",
        "display": "Fever > 38°C",
    }
    observation = expect(
        client.post(
            f"{BASE}/observation/",
            json={
                "resourceType": "Observation",
                "status": "final",
                "code": {"coding": [sent_coding]},
                "subject": {"reference": f"Patient/{patient_id}"},
                "effectiveDateTime": "2024-11-05T10:00:00Z",
                "valueQuantity": {"value": 39.2, "unit": "°C"},
            },
        ),
        201,
    )
    assert observation["code"]["coding"][0]["code"] == "FIEVRE"
    assert observation["valueQuantity"]["value"] == 39.2

    # "Filter Observations by Thesaurus": the contract binds lab results to one thesaurus
    # (Biologie), so coding[0] is the Biologie concept and the coding sent is kept as
    # coding[1] (docs/resources/observation.md); the guide's filter on coding[0] finds
    # nothing, a filter on every coding finds the observation.
    read = expect(client.get(f"{BASE}/observation/{observation['id']}/"), 200)
    assert read["code"]["coding"][0]["system"] == "urn:codoc:fhir:codesystem:Biologie"
    assert "COVID_SYMPTOMES" not in read["code"]["coding"][0]["system"]
    assert sent_coding in read["code"]["coding"][1:]
    assert concept_codes(engine, "Biologie") == ["FIEVRE"]

    # "Deletion will fail if observations still use codes from this thesaurus"
    assert "Observation" in issue(client.delete(f"{BASE}/codesystem/Biologie/"), 409, "conflict")
    expect(client.delete(f"{BASE}/observation/{observation['id']}/"), 204)
    expect(client.delete(f"{BASE}/codesystem/Biologie/"), 204)
    expect(client.delete(f"{BASE}/codesystem/COVID_SYMPTOMES/"), 204)


TREATMENTS = [
    {"code": "STATINE", "display": "Statin"},
    {"code": "BETABLOQUANT", "display": "Beta-blocker"},
    {"code": "IEC", "display": "ACE inhibitor"},
    {"code": "ASPIRINE", "display": "Aspirin"},
    {"code": "CLOPIDOGREL", "display": "Clopidogrel"},
]
SCORES = [
    {"code": "NYHA", "display": "NYHA Classification (heart failure)"},
    {"code": "GRACE", "display": "GRACE Score (acute coronary syndrome risk)"},
    {"code": "TIMI", "display": "TIMI Score (heart attack risk)"},
    {"code": "CHA2DS2_VASC", "display": "CHA2DS2-VASc Score (stroke risk in atrial fibrillation)"},
]


def test_practical_use_cases(client, engine):
    cases = [
        ("TRAITEMENTS_CARDIO", "Cardiology treatments", "Cardiology Treatments", TREATMENTS),
        ("SCORES_CARDIO", "Cardiology scores", "Cardiology Scores", SCORES),
    ]
    for code, name, title, concepts in cases:
        created = expect(
            client.post(f"{BASE}/codesystem/", json=codesystem(code, name, title)), 201
        )
        assert created["identifier"][1]["value"] == code
        batch = expect(
            client.post(f"{BASE}/codesystem/{code}/concept/", json={"concept": concepts}), 200
        )
        assert [(c["code"], c["display"]) for c in batch["concept"]] == [
            (c["code"], c["display"]) for c in concepts
        ]
        assert concept_codes(engine, code) == [c["code"] for c in concepts]
    # each got its own id although both bodies send the official identifier "1"
    with engine.connect() as conn:
        assert len(set(conn.execute(select(dwh_thesaurus.c.thesaurus_num)).scalars())) == 2
