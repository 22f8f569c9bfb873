"""A transaction Bundle shaped like Synthea's output (R4), with only the types stored whole
(plus the Patient): every entry must load, and read back as sent."""

from __future__ import annotations

from typing import Any

PATIENT = "urn:uuid:5cbc121b-cd71-4428-b8b7-31e53eba8184"
PRACTITIONER = "urn:uuid:0000016d-3a85-4cca-0000-000000007c56"
ROLE = "urn:uuid:a1b2c3d4-0000-4000-8000-000000000001"
LOCATION = "urn:uuid:a1b2c3d4-0000-4000-8000-000000000002"
MEDICATION = "urn:uuid:a1b2c3d4-0000-4000-8000-000000000003"
CLAIM = "urn:uuid:a1b2c3d4-0000-4000-8000-000000000004"
CAREPLAN = "urn:uuid:a1b2c3d4-0000-4000-8000-000000000005"
CARETEAM = "urn:uuid:a1b2c3d4-0000-4000-8000-000000000006"
IMMUNIZATION = "urn:uuid:a1b2c3d4-0000-4000-8000-000000000007"
SNOMED = "http://snomed.info/sct"
NPI = "http://hl7.org/fhir/sid/us-npi"
SYNTHEA = "https://github.com/synthetichealth/synthea"


def _patient() -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "text": {
            "status": "generated",
            "div": '<div xmlns="http://www.w3.org/1999/xhtml">Generated</div>',
        },
        "extension": [
            {
                "url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex",
                "valueCode": "F",
            }
        ],
        "identifier": [{"system": SYNTHEA, "value": "5cbc121b-cd71-4428-b8b7-31e53eba8184"}],
        "name": [
            {"use": "official", "family": "Kuhn96", "given": ["Alesha810"], "prefix": ["Mrs."]}
        ],
        "gender": "female",
        "birthDate": "1975-02-14",
        "address": [{"line": ["1020 Jakubowski Crossroad"], "city": "Boston", "state": "MA"}],
    }


def stored_entries() -> list[dict[str, Any]]:
    """(fullUrl, resource) of each stored-type entry, Synthea-style."""
    patient_ref = {"reference": PATIENT}
    return [
        (
            PRACTITIONER,
            {
                "resourceType": "Practitioner",
                "identifier": [{"system": NPI, "value": "9999947159"}],
                "active": True,
                "name": [{"family": "Fahey393", "given": ["Jerrold404"], "prefix": ["Dr."]}],
                "telecom": [
                    {
                        "extension": [
                            {
                                "url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-direct",
                                "valueBoolean": True,
                            }
                        ],
                        "system": "email",
                        "value": "Jerrold404.Fahey393@example.com",
                        "use": "work",
                    }
                ],
                "address": [{"line": ["60 HOSPITAL ROAD"], "city": "LEOMINSTER", "state": "MA"}],
                "gender": "male",
            },
        ),
        (
            LOCATION,
            {
                "resourceType": "Location",
                "identifier": [{"system": SYNTHEA, "value": "loc-1"}],
                "status": "active",
                "name": "HEALTHALLIANCE HOSPITALS, INC",
                "telecom": [{"system": "phone", "value": "9784662000"}],
                "address": {"line": ["60 HOSPITAL ROAD"], "city": "LEOMINSTER", "state": "MA"},
                "position": {"longitude": -71.70, "latitude": 42.52},
                "managingOrganization": {
                    "reference": "Organization?identifier=https://github.com/synthetichealth/synthea|ef58ea08",
                    "display": "HEALTHALLIANCE HOSPITALS, INC",
                },
            },
        ),
        (
            ROLE,
            {
                "resourceType": "PractitionerRole",
                "practitioner": {"reference": PRACTITIONER, "display": "Dr. Jerrold404 Fahey393"},
                "organization": {
                    "reference": "Organization?identifier=https://github.com/synthetichealth/synthea|ef58ea08"
                },
                "code": [
                    {
                        "coding": [
                            {"system": "http://nucc.org/provider-taxonomy", "code": "208D00000X"}
                        ]
                    }
                ],
                "specialty": [
                    {
                        "coding": [
                            {"system": "http://nucc.org/provider-taxonomy", "code": "208D00000X"}
                        ]
                    }
                ],
                "location": [{"reference": LOCATION}],
            },
        ),
        (
            MEDICATION,
            {
                "resourceType": "Medication",
                "code": {
                    "coding": [
                        {
                            "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                            "code": "1049221",
                            "display": "Acetaminophen 325 MG / Oxycodone 5 MG Oral Tablet",
                        }
                    ],
                    "text": "Acetaminophen 325 MG / Oxycodone Hydrochloride 5 MG Oral Tablet",
                },
                "status": "active",
            },
        ),
        (
            "urn:uuid:a1b2c3d4-0000-4000-8000-000000000010",
            {
                "resourceType": "MedicationAdministration",
                "status": "completed",
                "medicationReference": {"reference": MEDICATION},
                "subject": patient_ref,
                "effectiveDateTime": "2015-06-01T10:00:00-04:00",
                "reasonReference": [{"reference": "Condition?identifier=x|y"}],
            },
        ),
        (
            IMMUNIZATION,
            {
                "resourceType": "Immunization",
                "status": "completed",
                "vaccineCode": {
                    "coding": [
                        {
                            "system": "http://hl7.org/fhir/sid/cvx",
                            "code": "140",
                            "display": "Influenza",
                        }
                    ],
                    "text": "Influenza, seasonal, injectable, preservative free",
                },
                "patient": patient_ref,
                "occurrenceDateTime": "2015-06-01T10:00:00-04:00",
                "primarySource": True,
                "location": {"reference": LOCATION, "display": "HEALTHALLIANCE HOSPITALS, INC"},
            },
        ),
        (
            "urn:uuid:a1b2c3d4-0000-4000-8000-000000000011",
            {
                "resourceType": "AllergyIntolerance",
                "clinicalStatus": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                            "code": "active",
                        }
                    ]
                },
                "verificationStatus": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
                            "code": "confirmed",
                        }
                    ]
                },
                "type": "allergy",
                "category": ["environment"],
                "criticality": "low",
                "code": {
                    "coding": [
                        {"system": SNOMED, "code": "419199007", "display": "Allergy to substance"}
                    ]
                },
                "patient": patient_ref,
                "recordedDate": "1977-08-01T08:00:00-04:00",
                "reaction": [
                    {
                        "substance": {"coding": [{"system": SNOMED, "code": "260147004"}]},
                        "manifestation": [{"coding": [{"system": SNOMED, "code": "247472004"}]}],
                        "severity": "mild",
                    }
                ],
            },
        ),
        (
            CARETEAM,
            {
                "resourceType": "CareTeam",
                "status": "active",
                "subject": patient_ref,
                "period": {"start": "2015-06-01T10:00:00-04:00"},
                "participant": [
                    {
                        "role": [
                            {
                                "coding": [
                                    {"system": SNOMED, "code": "116154003", "display": "Patient"}
                                ]
                            }
                        ],
                        "member": patient_ref,
                    },
                    {"member": {"reference": PRACTITIONER}},
                ],
                "reasonCode": [{"coding": [{"system": SNOMED, "code": "444814009"}]}],
            },
        ),
        (
            CAREPLAN,
            {
                "resourceType": "CarePlan",
                "text": {
                    "status": "generated",
                    "div": '<div xmlns="http://www.w3.org/1999/xhtml">Care Plan</div>',
                },
                "status": "active",
                "intent": "order",
                "category": [{"coding": [{"system": SNOMED, "code": "734163000"}]}],
                "subject": patient_ref,
                "period": {"start": "2015-06-01T10:00:00-04:00"},
                "careTeam": [{"reference": CARETEAM}],
                "activity": [
                    {
                        "detail": {
                            "code": {"coding": [{"system": SNOMED, "code": "229586001"}]},
                            "status": "in-progress",
                            "location": {"display": "HEALTHALLIANCE HOSPITALS, INC"},
                        }
                    }
                ],
            },
        ),
        (
            "urn:uuid:a1b2c3d4-0000-4000-8000-000000000012",
            {
                "resourceType": "Goal",
                "lifecycleStatus": "active",
                "description": {"text": "Maintain blood pressure below 140/90 mmHg"},
                "subject": patient_ref,
                "target": [{"dueDate": "2016-01-01"}],
            },
        ),
        (
            "urn:uuid:a1b2c3d4-0000-4000-8000-000000000013",
            {
                "resourceType": "Device",
                "udiCarrier": [
                    {"deviceIdentifier": "43069338026389", "carrierHRF": "(01)43069338026389"}
                ],
                "status": "active",
                "distinctIdentifier": "43069338026389",
                "manufactureDate": "1999-06-15T18:56:01-04:00",
                "expirationDate": "2024-06-21T18:56:01-04:00",
                "lotNumber": "1134",
                "serialNumber": "64592",
                "deviceName": [{"name": "Implantable defibrillator", "type": "user-friendly-name"}],
                "type": {"coding": [{"system": SNOMED, "code": "72506001"}]},
                "patient": patient_ref,
            },
        ),
        (
            "urn:uuid:a1b2c3d4-0000-4000-8000-000000000014",
            {
                "resourceType": "ImagingStudy",
                "identifier": [
                    {
                        "use": "official",
                        "system": "urn:ietf:rfc:3986",
                        "value": "urn:oid:1.2.840.99999999.1",
                    }
                ],
                "status": "available",
                "subject": patient_ref,
                "started": "2015-06-01T10:00:00-04:00",
                "numberOfSeries": 1,
                "numberOfInstances": 1,
                "procedureCode": [{"coding": [{"system": SNOMED, "code": "399208008"}]}],
                "location": {"reference": LOCATION},
                "series": [
                    {
                        "uid": "1.2.840.99999999.1.1",
                        "number": 1,
                        "modality": {
                            "system": "http://dicom.nema.org/resources/ontology/DCM",
                            "code": "DX",
                        },
                        "numberOfInstances": 1,
                        "bodySite": {"system": SNOMED, "code": "51185008"},
                        "started": "2015-06-01T10:00:00-04:00",
                        "instance": [
                            {
                                "uid": "1.2.840.99999999.1.1.1",
                                "sopClass": {
                                    "system": "urn:ietf:rfc:3986",
                                    "code": "urn:oid:1.2.840.10008.5.1.4.1.1.1.1",
                                },
                                "number": 1,
                            }
                        ],
                    }
                ],
            },
        ),
        (
            "urn:uuid:a1b2c3d4-0000-4000-8000-000000000015",
            {
                "resourceType": "SupplyDelivery",
                "status": "completed",
                "patient": patient_ref,
                "type": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/supply-item-type",
                            "code": "device",
                        }
                    ]
                },
                "suppliedItem": {
                    "quantity": {"value": 2},
                    "itemCodeableConcept": {"coding": [{"system": SNOMED, "code": "337388004"}]},
                },
                "occurrenceDateTime": "2020-03-19T22:16:58-04:00",
            },
        ),
        (
            CLAIM,
            {
                "resourceType": "Claim",
                "status": "active",
                "type": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/claim-type",
                            "code": "institutional",
                        }
                    ]
                },
                "use": "claim",
                "patient": {"reference": PATIENT, "display": "Alesha810 Kuhn96"},
                "billablePeriod": {
                    "start": "2015-06-01T10:00:00-04:00",
                    "end": "2015-06-01T10:15:00-04:00",
                },
                "created": "2015-06-01T10:15:00-04:00",
                "provider": {
                    "reference": "Organization?identifier=https://github.com/synthetichealth/synthea|ef58ea08"
                },
                "priority": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/processpriority",
                            "code": "normal",
                        }
                    ]
                },
                "facility": {"reference": LOCATION},
                "prescription": {"reference": "urn:uuid:not-in-this-bundle"},
                "insurance": [{"sequence": 1, "focal": True, "coverage": {"display": "Medicaid"}}],
                "item": [
                    {
                        "sequence": 1,
                        "productOrService": {"coding": [{"system": SNOMED, "code": "185345009"}]},
                        "informationSequence": [1],
                    }
                ],
                "supportingInfo": [
                    {
                        "sequence": 1,
                        "category": {"coding": [{"code": "info"}]},
                        "valueReference": {"reference": IMMUNIZATION},
                    }
                ],
                "total": {"value": 129.16, "currency": "USD"},
            },
        ),
        (
            "urn:uuid:a1b2c3d4-0000-4000-8000-000000000016",
            {
                "resourceType": "ExplanationOfBenefit",
                "identifier": [
                    {
                        "system": "https://bluebutton.cms.gov/resources/variables/clm_id",
                        "value": "1234",
                    }
                ],
                "status": "active",
                "type": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/claim-type",
                            "code": "institutional",
                        }
                    ]
                },
                "use": "claim",
                "patient": {"reference": PATIENT},
                "billablePeriod": {
                    "start": "2015-06-01T10:00:00-04:00",
                    "end": "2016-06-01T10:15:00-04:00",
                },
                "created": "2015-06-01T10:15:00-04:00",
                "insurer": {"display": "Medicaid"},
                "provider": {"reference": PRACTITIONER},
                "referral": {"reference": "#referral"},
                "claim": {"reference": CLAIM},
                "outcome": "complete",
                "careTeam": [{"sequence": 1, "provider": {"reference": PRACTITIONER}}],
                "insurance": [{"focal": True, "coverage": {"display": "Medicaid"}}],
                "item": [
                    {
                        "sequence": 1,
                        "productOrService": {"coding": [{"system": SNOMED, "code": "185345009"}]},
                        "servicedPeriod": {
                            "start": "2015-06-01T10:00:00-04:00",
                            "end": "2015-06-01T10:15:00-04:00",
                        },
                        "net": {"value": 129.16, "currency": "USD"},
                    }
                ],
                "total": [
                    {
                        "category": {"coding": [{"code": "submitted"}]},
                        "amount": {"value": 129.16, "currency": "USD"},
                    }
                ],
                "payment": {"amount": {"value": 0.0, "currency": "USD"}},
                "contained": [
                    {
                        "resourceType": "ServiceRequest",
                        "id": "referral",
                        "status": "completed",
                        "intent": "order",
                        "subject": {"reference": PATIENT},
                    }
                ],
            },
        ),
        (
            "urn:uuid:a1b2c3d4-0000-4000-8000-000000000017",
            {
                "resourceType": "Provenance",
                "target": [
                    {"reference": PATIENT},
                    {"reference": CLAIM},
                    {"reference": IMMUNIZATION},
                ],
                "recorded": "2015-06-01T10:15:00.123-04:00",
                "agent": [
                    {
                        "type": {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                                    "code": "author",
                                }
                            ]
                        },
                        "who": {"reference": PRACTITIONER},
                        "onBehalfOf": {
                            "reference": "Organization?identifier=https://github.com/synthetichealth/synthea|ef58ea08"
                        },
                    }
                ],
            },
        ),
    ]


def bundle() -> dict[str, Any]:
    entries = [
        {
            "fullUrl": PATIENT,
            "resource": _patient(),
            "request": {"method": "POST", "url": "Patient"},
        }
    ]
    for full_url, resource in stored_entries():
        request: dict[str, str] = {"method": "POST", "url": resource["resourceType"]}
        if resource["resourceType"] == "Practitioner":
            request["ifNoneExist"] = f"identifier={NPI}|9999947159"
        entries.append({"fullUrl": full_url, "resource": resource, "request": request})
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}
