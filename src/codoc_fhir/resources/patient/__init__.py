"""Patient: the kind (kind.py), its mappings from and to FHIR and its search parameters.

The names below are the ones the former single module `resources/patient.py` offered, so
`from codoc_fhir.resources.patient import Patient` keeps working.
"""

from codoc_fhir.resources.patient.from_fhir import (
    DEFAULT_IDENTIFIER_SYSTEM,
    IDENTIFIER_TYPE_SYSTEM,
    IPP_TYPES,
    MAX_MERGE_CHAIN,
    check_no_merge_cycle,
    clipped,
    contact_values,
    death_values,
    dump_json,
    has_value,
    ipp_list,
    is_ipp,
    is_server_official,
    merge_values,
    name_values,
)
from codoc_fhir.resources.patient.kind import Patient
from codoc_fhir.resources.patient.search_params import (
    DEATH_CODE,
    GENDER_SYSTEM,
    GENDER_TO_SEX,
    PATIENT_SEARCH,
    SEX_TO_GENDER,
)
from codoc_fhir.resources.patient.to_fhir import answer_death, answer_names

__all__ = [
    "DEATH_CODE",
    "DEFAULT_IDENTIFIER_SYSTEM",
    "GENDER_SYSTEM",
    "GENDER_TO_SEX",
    "IDENTIFIER_TYPE_SYSTEM",
    "IPP_TYPES",
    "MAX_MERGE_CHAIN",
    "PATIENT_SEARCH",
    "SEX_TO_GENDER",
    "Patient",
    "answer_death",
    "answer_names",
    "check_no_merge_cycle",
    "clipped",
    "contact_values",
    "death_values",
    "dump_json",
    "has_value",
    "ipp_list",
    "is_ipp",
    "is_server_official",
    "merge_values",
    "name_values",
]
