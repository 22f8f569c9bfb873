"""Synthea-style transaction Bundles, built here so that the tests need no download.

Synthea (the synthetic patient generator most FHIR servers are tried with) writes one
transaction Bundle per patient: every entry has a `urn:uuid:` fullUrl and a POST request,
and the entries reference each other by those urns. The shapes below follow what its R4
exporter writes (US Core extensions on the Patient, several typed identifiers, an
Organization without identifier, a Practitioner as participant, author and performer,
vital signs with components, a Claim...), with fixed values so the output is the same on
every run: a fixed number of patients, uuids derived (uuid5) from the patient's index.
"""

from __future__ import annotations

import base64
import uuid
from typing import Any

NAMESPACE = uuid.UUID("6f1e7c3a-2b4d-4e8f-9a10-5c6d7e8f9a0b")
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition"
IDENTIFIER_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0203"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
NAMES = (
    "organization",
    "patient",
    "practitioner",
    "encounter",
    "condition",
    "height",
    "weight",
    "bp",
    "heart",
    "smoking",
    "phq",
    "a1c",
    "procedure",
    "immunization",
    "claim",
    "report",
    "note",
    "medication",
)
NOTE = (
    "Chief complaint: follow-up of type 2 diabetes.\n"
    "History: the patient reports good adherence to metformin. No chest pain.\n"
    "Assessment: diabetes mellitus type 2, controlled. Plan: continue lisinopril.\n"
)


def synthea_bundles(count: int = 2) -> list[dict[str, Any]]:
    """`count` patients, one transaction Bundle each."""
    return [_patient_bundle(index) for index in range(count)]


def _urn(index: int, name: str) -> str:
    return f"urn:uuid:{uuid.uuid5(NAMESPACE, f'{index}:{name}')}"


def _coding(system: str, code: str, display: str) -> dict[str, str]:
    return {"system": system, "code": code, "display": display}


def _concept(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [_coding(system, code, display)], "text": display}


def _ref(urn: str, display: str | None = None) -> dict[str, str]:
    reference = {"reference": urn}
    if display:
        reference["display"] = display
    return reference


def _vital(code: str, display: str) -> list[dict[str, Any]]:
    category = _coding(OBSERVATION_CATEGORY, "vital-signs", "vital signs")
    return [{"coding": [category]}, _concept(LOINC, code, display)]


def _patient_bundle(index: int) -> dict[str, Any]:
    """One patient's visit: every resource type of a Synthea export, cross-referenced."""
    urns = {name: _urn(index, name) for name in NAMES}
    resources = [
        _organization(index),
        _practitioner(index),
        _patient(index, urns),
        _encounter(index, urns),
        _condition(urns),
        _quantity(urns, "height", "8302-2", "Body Height", 170.2 + index, "cm"),
        _quantity(urns, "weight", "29463-7", "Body Weight", 81.4 + index, "kg"),
        _blood_pressure(urns, 121 + index, 79),
        _quantity(urns, "heart", "8867-4", "Heart rate", 72, "/min"),
        _smoking(urns),
        _phq2(urns, index),
        _a1c(urns, 6.4 + index / 10),
        _procedure(urns),
        _immunization(urns),
        _claim(urns),
        _report(urns),
        _note(urns),
        _medication(urns),
    ]
    names = list(urns)
    names = ["organization", "practitioner", "patient", *names[3:]]
    entries = [
        {
            "fullUrl": urns[name],
            "resource": resource,
            "request": {"method": "POST", "url": resource["resourceType"]},
        }
        for name, resource in zip(names, resources, strict=True)
    ]
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def _organization(index: int) -> dict[str, Any]:
    return {
        "resourceType": "Organization",
        "active": True,
        "type": [
            _concept(
                "http://terminology.hl7.org/CodeSystem/organization-type",
                "prov",
                "Healthcare Provider",
            )
        ],
        "name": f"SPRINGFIELD GENERAL HOSPITAL {index}",
        "telecom": [{"system": "phone", "value": "413-555-0100"}],
        "address": [
            {
                "line": ["759 CHESTNUT STREET"],
                "city": "SPRINGFIELD",
                "state": "MA",
                "postalCode": "01199",
                "country": "US",
            }
        ],
    }


def _practitioner(index: int) -> dict[str, Any]:
    return {
        "resourceType": "Practitioner",
        "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": f"99999{index:05d}"}],
        "active": True,
        "name": [{"family": "Hoppe", "given": ["Lourdes"], "prefix": ["Dr."]}],
        "telecom": [
            {
                "extension": [
                    {
                        "url": "http://hl7.org/fhir/us/core/StructureDefinition/direct",
                        "valueBoolean": True,
                    }
                ],
                "system": "email",
                "value": "Lourdes.Hoppe@example.com",
                "use": "work",
            }
        ],
        "address": [{"line": ["759 CHESTNUT STREET"], "city": "SPRINGFIELD", "state": "MA"}],
        "gender": "female",
    }


def _race_and_ethnicity() -> list[dict[str, Any]]:
    omb = "urn:oid:2.16.840.1.113883.6.238"
    return [
        {
            "url": f"{US_CORE}/us-core-race",
            "extension": [
                {"url": "ombCategory", "valueCoding": _coding(omb, "2106-3", "White")},
                {"url": "text", "valueString": "White"},
            ],
        },
        {
            "url": f"{US_CORE}/us-core-ethnicity",
            "extension": [
                {
                    "url": "ombCategory",
                    "valueCoding": _coding(omb, "2186-5", "Not Hispanic or Latino"),
                },
                {"url": "text", "valueString": "Not Hispanic or Latino"},
            ],
        },
        {
            "url": "http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName",
            "valueString": "Mertz280",
        },
        {"url": f"{US_CORE}/us-core-birthsex", "valueCode": "M"},
    ]


def _identifier(code: str, display: str, system: str, value: str) -> dict[str, Any]:
    return {
        "type": {"coding": [_coding(IDENTIFIER_TYPE, code, display)], "text": display},
        "system": system,
        "value": value,
    }


def _patient(index: int, urns: dict[str, str]) -> dict[str, Any]:
    mrn = urns["patient"].removeprefix("urn:uuid:")
    return {
        "resourceType": "Patient",
        "extension": _race_and_ethnicity(),
        "identifier": [
            {"system": "https://github.com/synthetichealth/synthea", "value": mrn},
            _identifier("MR", "Medical Record Number", "http://hospital.smarthealthit.org", mrn),
            _identifier(
                "SS",
                "Social Security Number",
                "http://hl7.org/fhir/sid/us-ssn",
                f"999-5{index}-1234",
            ),
            _identifier(
                "DL",
                "Driver's license number",
                "urn:oid:2.16.840.1.113883.4.3.25",
                f"S9999{index}123",
            ),
        ],
        "name": [
            {"use": "official", "family": "Kunze", "given": ["Jon", "Paul"], "prefix": ["Mr."]},
            {"use": "maiden", "family": "Mertz", "given": ["Jon"]},
        ],
        "telecom": [{"system": "phone", "value": f"555-01{index:02d}-2233", "use": "home"}],
        "gender": "male",
        "birthDate": f"197{index}-04-1{index}",
        "address": [
            {
                "extension": [
                    {
                        "url": "http://hl7.org/fhir/StructureDefinition/geolocation",
                        "extension": [
                            {"url": "latitude", "valueDecimal": 42.1014},
                            {"url": "longitude", "valueDecimal": -72.5898},
                        ],
                    }
                ],
                "line": [f"{100 + index} Kohler Lodge"],
                "city": "Springfield",
                "state": "MA",
                "postalCode": "01101",
                "country": "US",
            }
        ],
        "maritalStatus": _concept(
            "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "M", "Married"
        ),
        "multipleBirthBoolean": False,
        "communication": [
            {"language": _concept("urn:ietf:bcp:47", "en-US", "English (United States)")}
        ],
    }


def _encounter(index: int, urns: dict[str, str]) -> dict[str, Any]:
    day = f"2024-03-0{index + 1}"
    return {
        "resourceType": "Encounter",
        "identifier": [
            {
                "use": "official",
                "system": "https://github.com/synthetichealth/synthea",
                "value": urns["encounter"][9:],
            }
        ],
        "status": "finished",
        "class": _coding("http://terminology.hl7.org/CodeSystem/v3-ActCode", "AMB", "ambulatory"),
        "type": [_concept(SNOMED, "185349003", "Encounter for check up (procedure)")],
        "subject": _ref(urns["patient"], "Mr. Jon Paul Kunze"),
        "participant": [
            {
                "type": [
                    _concept(
                        "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                        "PPRF",
                        "primary performer",
                    )
                ],
                "period": {
                    "start": f"{day}T09:00:00-05:00",
                    "end": f"{day}T09:30:00-05:00",
                },
                "individual": _ref(urns["practitioner"], "Dr. Lourdes Hoppe"),
            }
        ],
        "period": {
            "start": f"{day}T09:00:00-05:00",
            "end": f"{day}T09:30:00-05:00",
        },
        "reasonCode": [_concept(SNOMED, "44054006", "Diabetes mellitus type 2 (disorder)")],
        "location": [{"location": {"display": f"SPRINGFIELD GENERAL HOSPITAL {index}"}}],
        "serviceProvider": _ref(urns["organization"], f"SPRINGFIELD GENERAL HOSPITAL {index}"),
    }


def _condition(urns: dict[str, str]) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "clinicalStatus": {
            "coding": [
                _coding(
                    "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "resolved",
                    "Resolved",
                )
            ]
        },
        "verificationStatus": {
            "coding": [
                _coding(
                    "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                    "confirmed",
                    "Confirmed",
                )
            ]
        },
        "category": [
            {
                "coding": [
                    _coding(
                        "http://terminology.hl7.org/CodeSystem/condition-category",
                        "encounter-diagnosis",
                        "Encounter Diagnosis",
                    )
                ]
            }
        ],
        "code": _concept(SNOMED, "44054006", "Diabetes mellitus type 2 (disorder)"),
        "subject": _ref(urns["patient"]),
        "encounter": _ref(urns["encounter"]),
        "onsetDateTime": "2019-06-02T10:15:00-04:00",
        "abatementDateTime": "2024-03-01T09:30:00-05:00",
        "recordedDate": "2019-06-02T10:15:00-04:00",
    }


def _observation(
    urns: dict[str, str], category: list[dict[str, Any]], **values: Any
) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": category[:1],
        "code": category[1],
        "subject": _ref(urns["patient"]),
        "encounter": _ref(urns["encounter"]),
        "effectiveDateTime": "2024-03-01T09:10:00-05:00",
        "issued": "2024-03-01T09:10:00.523-05:00",
        **values,
    }


def _quantity(
    urns: dict[str, str], name: str, code: str, display: str, value: float, unit: str
) -> dict[str, Any]:
    quantity = {"value": value, "unit": unit, "system": UCUM, "code": unit}
    return _observation(urns, _vital(code, display), valueQuantity=quantity)


def _blood_pressure(urns: dict[str, str], systolic: int, diastolic: int) -> dict[str, Any]:
    def component(code: str, display: str, value: int) -> dict[str, Any]:
        return {
            "code": _concept(LOINC, code, display),
            "valueQuantity": {"value": value, "unit": "mm[Hg]", "system": UCUM, "code": "mm[Hg]"},
        }

    return _observation(
        urns,
        _vital("85354-9", "Blood pressure panel with all children optional"),
        component=[
            component("8462-4", "Diastolic Blood Pressure", diastolic),
            component("8480-6", "Systolic Blood Pressure", systolic),
        ],
    )


def _smoking(urns: dict[str, str]) -> dict[str, Any]:
    survey = [
        {"coding": [_coding(OBSERVATION_CATEGORY, "social-history", "Social History")]},
        _concept(LOINC, "72166-2", "Tobacco smoking status"),
    ]
    value = _concept(SNOMED, "266919005", "Never smoked tobacco (finding)")
    return _observation(urns, survey, valueCodeableConcept=value)


def _phq2(urns: dict[str, str], index: int) -> dict[str, Any]:
    survey = [
        {"coding": [_coding(OBSERVATION_CATEGORY, "survey", "Survey")]},
        _concept(LOINC, "55758-7", "Patient Health Questionnaire 2 item (PHQ-2) total score"),
    ]
    return _observation(urns, survey, valueInteger=index + 1)


def _a1c(urns: dict[str, str], value: float) -> dict[str, Any]:
    lab = [
        {"coding": [_coding(OBSERVATION_CATEGORY, "laboratory", "laboratory")]},
        _concept(LOINC, "4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood"),
    ]
    quantity = {"value": round(value, 1), "unit": "%", "system": UCUM, "code": "%"}
    reference = [
        {
            "low": {"value": 4.0, "unit": "%", "system": UCUM, "code": "%"},
            "high": {"value": 5.6, "unit": "%", "system": UCUM, "code": "%"},
        }
    ]
    return _observation(urns, lab, valueQuantity=quantity, referenceRange=reference)


def _procedure(urns: dict[str, str]) -> dict[str, Any]:
    return {
        "resourceType": "Procedure",
        "status": "completed",
        "code": _concept(SNOMED, "430193006", "Medication Reconciliation (procedure)"),
        "subject": _ref(urns["patient"]),
        "encounter": _ref(urns["encounter"]),
        "performedPeriod": {
            "start": "2024-03-01T09:05:00-05:00",
            "end": "2024-03-01T09:20:00-05:00",
        },
        "location": {"display": "SPRINGFIELD GENERAL HOSPITAL"},
    }


def _immunization(urns: dict[str, str]) -> dict[str, Any]:
    return {
        "resourceType": "Immunization",
        "status": "completed",
        "vaccineCode": _concept(
            "http://hl7.org/fhir/sid/cvx",
            "140",
            "Influenza, seasonal, injectable, preservative free",
        ),
        "patient": _ref(urns["patient"]),
        "encounter": _ref(urns["encounter"]),
        "occurrenceDateTime": "2024-03-01T09:25:00-05:00",
        "primarySource": True,
        "location": {"display": "SPRINGFIELD GENERAL HOSPITAL"},
    }


def _claim(urns: dict[str, str]) -> dict[str, Any]:
    return {
        "resourceType": "Claim",
        "status": "active",
        "type": _concept(
            "http://terminology.hl7.org/CodeSystem/claim-type", "professional", "Professional"
        ),
        "use": "claim",
        "patient": _ref(urns["patient"], "Mr. Jon Paul Kunze"),
        "billablePeriod": {
            "start": "2024-03-01T09:00:00-05:00",
            "end": "2024-03-01T09:30:00-05:00",
        },
        "created": "2024-03-01T09:30:00-05:00",
        "provider": _ref(urns["organization"], "SPRINGFIELD GENERAL HOSPITAL"),
        "priority": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/processpriority",
                    "code": "normal",
                }
            ]
        },
        "diagnosis": [{"sequence": 1, "diagnosisReference": _ref(urns["condition"])}],
        "insurance": [{"sequence": 1, "focal": True, "coverage": {"display": "Cigna Health"}}],
        "item": [
            {
                "sequence": 1,
                "productOrService": _concept(
                    SNOMED, "185349003", "Encounter for check up (procedure)"
                ),
                "encounter": [_ref(urns["encounter"])],
            },
            {
                "sequence": 2,
                "diagnosisSequence": [1],
                "productOrService": _concept(
                    SNOMED, "44054006", "Diabetes mellitus type 2 (disorder)"
                ),
            },
        ],
        "total": {"value": 129.16, "currency": "USD"},
    }


def _report(urns: dict[str, str]) -> dict[str, Any]:
    return {
        "resourceType": "DiagnosticReport",
        "status": "final",
        "category": [
            {
                "coding": [
                    _coding("http://terminology.hl7.org/CodeSystem/v2-0074", "LAB", "Laboratory")
                ]
            }
        ],
        "code": _concept(LOINC, "4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood"),
        "subject": _ref(urns["patient"]),
        "encounter": _ref(urns["encounter"]),
        "effectiveDateTime": "2024-03-01T09:10:00-05:00",
        "issued": "2024-03-01T09:10:00.523-05:00",
        "performer": [_ref(urns["practitioner"], "Dr. Lourdes Hoppe")],
        "result": [_ref(urns["a1c"], "Hemoglobin A1c/Hemoglobin.total in Blood")],
    }


def _note(urns: dict[str, str]) -> dict[str, Any]:
    note = "urn:uuid:" + urns["note"][9:]
    return {
        "resourceType": "DocumentReference",
        "identifier": [{"system": "urn:ietf:rfc:3986", "value": note}],
        "status": "superseded",
        "type": {
            "coding": [
                _coding(LOINC, "34117-2", "History and physical note"),
                _coding(LOINC, "51847-2", "Evaluation+Plan note"),
            ]
        },
        "category": [
            {
                "coding": [
                    _coding(
                        "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category",
                        "clinical-note",
                        "Clinical Note",
                    )
                ]
            }
        ],
        "subject": _ref(urns["patient"]),
        "date": "2024-03-01T09:00:00.000-05:00",
        "author": [_ref(urns["practitioner"], "Dr. Lourdes Hoppe")],
        "custodian": _ref(urns["organization"], "SPRINGFIELD GENERAL HOSPITAL"),
        "content": [
            {
                "attachment": {
                    "contentType": "text/plain; charset=utf-8",
                    "data": base64.b64encode(NOTE.encode()).decode(),
                },
                "format": {
                    "system": "http://ihe.net/fhir/ValueSet/IHE.FormatCode.codesystem",
                    "code": "urn:ihe:iti:xds:2017:mimeTypeSufficient",
                    "display": "mimeType Sufficient",
                },
            }
        ],
        "context": {
            "encounter": [_ref(urns["encounter"])],
            "period": {"start": "2024-03-01T09:00:00-05:00", "end": "2024-03-01T09:30:00-05:00"},
        },
    }


def _medication(urns: dict[str, str]) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": _concept(
            "http://www.nlm.nih.gov/research/umls/rxnorm", "314076", "lisinopril 10 MG Oral Tablet"
        ),
        "subject": _ref(urns["patient"]),
        "encounter": _ref(urns["encounter"]),
        "authoredOn": "2024-03-01T09:30:00-05:00",
        "requester": _ref(urns["practitioner"], "Dr. Lourdes Hoppe"),
        "reasonReference": [_ref(urns["condition"])],
        "dosageInstruction": [
            {
                "sequence": 1,
                "text": "Take one tablet by mouth once a day",
                "timing": {"repeat": {"frequency": 1, "period": 1.0, "periodUnit": "d"}},
                "asNeededBoolean": False,
                "doseAndRate": [
                    {
                        "type": _concept(
                            "http://terminology.hl7.org/CodeSystem/dose-rate-type",
                            "ordered",
                            "Ordered",
                        ),
                        "doseQuantity": {"value": 1.0},
                    }
                ],
            }
        ],
    }
