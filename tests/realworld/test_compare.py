"""The comparison helper itself: it lets through exactly what section 9 allows."""

from __future__ import annotations

import copy
from typing import Any

from tests.realworld.compare import canonical_reference, differences

IDS = {
    "urn:uuid:0a1b2c3d-0000-4000-8000-000000000001": "Patient/7",
    "Patient/source-p": "Patient/7",
    "Encounter/source-e": "Encounter/movement-2",
}


def observation() -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": "source-o",
        "meta": {"versionId": "9", "profile": ["http://example.org/p"]},
        "status": "final",
        "code": {
            "coding": [
                {"system": "http://loinc.org", "code": "85354-9", "display": "Blood pressure"},
                {"system": "http://snomed.info/sct", "code": "75367002"},
            ],
            "text": "BP",
        },
        "subject": {"reference": "urn:uuid:0a1b2c3d-0000-4000-8000-000000000001"},
        "encounter": {"reference": "Encounter/source-e"},
        "effectiveDateTime": "2024-01-15T15:00:00+01:00",
        "performer": [{"reference": "Organization/ext-lab", "display": "Lab"}],
        "component": [
            {
                "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                "valueQuantity": {"value": 120, "unit": "mmHg"},
            },
            {
                "code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
                "valueQuantity": {"value": 80, "unit": "mmHg"},
            },
        ],
    }


def answer_of(sent: dict[str, Any]) -> dict[str, Any]:
    """What a correct server may answer for `observation()`."""
    answered = copy.deepcopy(sent)
    answered["id"] = "12"
    answered["meta"] = {"versionId": "1", "lastUpdated": "2024-01-01T00:00:00Z"}
    answered["identifier"] = [{"use": "official", "value": "12"}]
    thesaurus = {"system": "urn:codoc:fhir:codesystem:Biologie", "code": "85354-9"}
    answered["code"]["coding"].insert(0, thesaurus)
    answered["subject"] = {"reference": "Patient/7"}
    answered["encounter"] = {"reference": "Encounter/movement-2"}
    answered["effectiveDateTime"] = "2024-01-15T14:00:00Z"
    answered["performer"] = [{"reference": "Organization/ext-lab", "display": "External lab"}]
    return answered


def test_what_section_9_allows_is_no_difference():
    sent = observation()
    assert differences(sent, answer_of(sent), IDS) == []


def test_a_dropped_element_is_a_difference():
    sent = observation()
    answered = answer_of(sent)
    del answered["component"][1]["valueQuantity"]
    assert differences(sent, answered, IDS) == [
        "Observation.component[1].valueQuantity: missing (sent {'value': 80, 'unit': 'mmHg'})"
    ]
    del answered["code"]["text"]
    assert "Observation.code.text: missing (sent 'BP')" in differences(sent, answered, IDS)


def test_a_changed_value_is_a_difference():
    sent = observation()
    answered = answer_of(sent)
    answered["component"][0]["valueQuantity"]["value"] = 120.5
    answered["status"] = "amended"
    assert differences(sent, answered, IDS) == [
        "Observation.component[0].valueQuantity.value: sent 120, answered 120.5",
        "Observation.status: sent 'final', answered 'amended'",
    ]


def test_a_lost_coding_system_is_a_difference():
    sent = observation()
    answered = answer_of(sent)
    del answered["code"]["coding"][2]["system"]
    assert differences(sent, answered, IDS) == [
        "Observation.code.coding[1].system: missing (sent 'http://snomed.info/sct')"
    ]


def test_a_replaced_coding_is_a_difference():
    """The thesaurus coding may come first, not instead of a sent one."""
    sent = observation()
    answered = answer_of(sent)
    del answered["code"]["coding"][2]
    assert differences(sent, answered, IDS) != []
    answered = answer_of(sent)
    answered["code"]["coding"][0]["system"] = "http://example.org/other"
    assert differences(sent, answered, IDS) != []


def test_a_reordered_list_is_a_difference():
    sent = observation()
    answered = answer_of(sent)
    answered["component"].reverse()
    found = differences(sent, answered, IDS)
    assert "Observation.component[0].code.coding[0].code: sent '8480-6', answered '8462-4'" in (
        found
    )


def test_an_extra_element_is_a_difference():
    sent = observation()
    answered = answer_of(sent)
    answered["interpretation"] = [{"text": "high"}]
    answered["component"][0]["valueQuantity"]["system"] = "http://unitsofmeasure.org"
    assert differences(sent, answered, IDS) == [
        "Observation.component[0].valueQuantity.system: extra element answered "
        "'http://unitsofmeasure.org'",
        "Observation.interpretation: extra element answered [{'text': 'high'}]",
    ]


def test_references_must_name_the_resource_the_run_created():
    sent = observation()
    answered = answer_of(sent)
    answered["subject"] = {"reference": "Patient/8"}
    answered["encounter"] = {"reference": "Encounter/2"}  # the stay, not the movement sent
    assert differences(sent, answered, IDS) == [
        "Observation.encounter.reference: sent 'Encounter/movement-2', answered 'Encounter/2'",
        "Observation.subject.reference: sent 'Patient/7', answered 'Patient/8'",
    ]
    # A display on a reference to something other than an Organization is kept as sent.
    sent["subject"]["display"] = "Jane"
    answered = answer_of(sent)
    answered["subject"]["display"] = "Jane Doe"
    assert differences(sent, answered, IDS) == [
        "Observation.subject.display: sent 'Jane', answered 'Jane Doe'"
    ]


def test_reference_spelling():
    assert canonical_reference("http://other.example/fhir/Patient/source-p", IDS) == "Patient/7"
    assert canonical_reference("Patient/source-p/_history/3", IDS) == "Patient/7"
    assert canonical_reference("Practitioner/abc", IDS) == "Practitioner/abc"
    assert canonical_reference("#contained-1", IDS) == "#contained-1"


def test_instants_compare_as_instants_and_dates_stay_exact():
    sent = {"resourceType": "Encounter", "period": {"start": "2024-01-15T15:00:00+01:00"}}
    assert (
        differences(
            sent, {"resourceType": "Encounter", "period": {"start": "2024-01-15T14:00:00.000Z"}}, {}
        )
        == []
    )
    later = {"resourceType": "Encounter", "period": {"start": "2024-01-15T15:00:00Z"}}
    assert differences(sent, later, {}) != []
    dated = {"resourceType": "Condition", "onsetDateTime": "2024-01"}
    filled = {"resourceType": "Condition", "onsetDateTime": "2024-01-01"}
    assert differences(dated, filled, {}) == [
        "Condition.onsetDateTime: sent '2024-01', answered '2024-01-01'"
    ]


def test_fixed_values_only_where_documented():
    procedure = {"resourceType": "Procedure", "status": "completed"}
    assert differences(procedure, {"resourceType": "Procedure", "status": "unknown"}, {}) == []
    request = {"resourceType": "MedicationRequest", "status": "active", "intent": "plan"}
    fixed = {"resourceType": "MedicationRequest", "status": "unknown", "intent": "order"}
    assert differences(request, fixed, {}) == []
    condition = {"resourceType": "Condition", "clinicalStatus": {"text": "active"}}
    assert differences(condition, {"resourceType": "Condition"}, {}) != []
    lab = {"resourceType": "Observation", "id": "3", "status": "preliminary"}
    assert differences(lab, {**lab, "status": "final"}, {}) != []
    phenotype = {"resourceType": "Observation", "id": "phenotype-3", "status": "final"}
    assert differences({**lab, "id": "x"}, phenotype, {}) == []


def test_patient_official_identifier_and_joined_given_names():
    sent = {
        "resourceType": "Patient",
        "identifier": [{"system": "urn:oid:1.2.3", "value": "MRN1"}],
        "name": [{"family": "Chalmers", "given": ["Peter", "James"]}, {"given": ["Jim", "J"]}],
    }
    answered = {
        "resourceType": "Patient",
        "id": "4",
        "identifier": [
            {"use": "official", "value": "4"},
            {"system": "urn:oid:1.2.3", "value": "MRN1"},
        ],
        "name": [{"family": "Chalmers", "given": ["Peter James"]}, {"given": ["Jim", "J"]}],
    }
    assert differences(sent, answered, {}) == []
    answered["name"][1]["given"] = ["Jim J"]  # only the first name maps to the columns
    answered["identifier"][1]["use"] = "usual"  # nor may a use be added
    assert differences(sent, answered, {}) == [
        "Patient.identifier[0].use: extra element answered 'usual'",
        "Patient.name[1].given[0]: sent 'Jim', answered 'Jim J'",
        "Patient.name[1].given[1]: missing (sent 'J')",
    ]


def test_booleans_are_not_numbers():
    sent = {"resourceType": "Observation", "valueBoolean": True}
    assert differences(sent, {"resourceType": "Observation", "valueBoolean": 1}, {}) != []
