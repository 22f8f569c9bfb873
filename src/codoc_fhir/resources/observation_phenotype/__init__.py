"""Observation phenotype: the kind (kind.py), its components (components.py) and its
mappings from and to FHIR.

The names below are the ones the former single module `observation_phenotype.py` offered,
so `from codoc_fhir.resources.observation_phenotype import X` keeps working.
"""

from codoc_fhir.resources.observation_phenotype.components import (
    AFFIRMED,
    COMPONENT_SYSTEM,
    COMPONENTS,
    DEFAULTS,
    FAMILY_TEXT,
    MAX_INTEGER,
    NEGATED,
    OBSERVATION_STATUS,
    PATIENT_TEXT,
    ComponentKind,
    component_code,
)
from codoc_fhir.resources.observation_phenotype.from_fhir import (
    as_r4b_component,
    check_component_shape,
    check_concept,
    component_values,
    found_text,
)
from codoc_fhir.resources.observation_phenotype.kind import ObservationPhenotype
from codoc_fhir.resources.observation_phenotype.to_fhir import (
    COMPONENT_COLUMNS,
    answered_components,
    sent_another_value,
)

__all__ = [
    "AFFIRMED",
    "COMPONENTS",
    "COMPONENT_COLUMNS",
    "COMPONENT_SYSTEM",
    "DEFAULTS",
    "FAMILY_TEXT",
    "MAX_INTEGER",
    "NEGATED",
    "OBSERVATION_STATUS",
    "PATIENT_TEXT",
    "ComponentKind",
    "ObservationPhenotype",
    "answered_components",
    "as_r4b_component",
    "check_component_shape",
    "check_concept",
    "component_code",
    "component_values",
    "found_text",
    "sent_another_value",
]
