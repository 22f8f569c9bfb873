"""Bodies the client tests send: a Patient with an IPP, a Procedure of the CCAM thesaurus."""

from __future__ import annotations

from typing import Any

CCAM = "urn:codoc:fhir:codesystem:Acte"


def patient_body(ipp: str = "IPP123456") -> dict[str, Any]:
    return {
        "identifier": [{"use": "usual", "system": "HIS", "value": ipp}],
        "name": [{"family": "Smith", "given": ["John"]}],
        "gender": "female",
        "birthDate": "1980-05-15",
    }


def procedure_body(patient_id: str, day: int = 1) -> dict[str, Any]:
    return {
        "status": "completed",
        "code": {"coding": [{"system": CCAM, "code": "DEQP003", "display": "ECG"}]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "performedDateTime": f"2024-01-{day:02d}T10:00:00Z",
    }
