"""The concepts of a thesaurus (`dwh_thesaurus_data` rows): checks, writes and answers.

Used by the CodeSystem resource (concept[] in its body) and by the concept sub-routes.
The names below are the ones the former single module `codesystem_concepts.py` offered,
so `from codoc_fhir.resources import codesystem_concepts as rows` keeps working.
"""

from codoc_fhir.resources.codesystem_concepts.from_fhir import (
    CONCEPT_KEYS,
    check_concept_body,
    parse_concept,
    parse_designations,
)
from codoc_fhir.resources.codesystem_concepts.queries import concepts_of, find_concept
from codoc_fhir.resources.codesystem_concepts.to_fhir import (
    concept_element,
    concept_json,
    designations,
)
from codoc_fhir.resources.codesystem_concepts.writes import (
    delete_concepts,
    insert_concepts,
    refuse_if_used,
    replace_concepts,
    touch_thesaurus,
    update_concept,
    usage,
)
from codoc_fhir.warehouse.schema import dwh_thesaurus_data as table

__all__ = [
    "CONCEPT_KEYS",
    "check_concept_body",
    "concept_element",
    "concept_json",
    "concepts_of",
    "delete_concepts",
    "designations",
    "find_concept",
    "insert_concepts",
    "parse_concept",
    "parse_designations",
    "refuse_if_used",
    "replace_concepts",
    "table",
    "touch_thesaurus",
    "update_concept",
    "usage",
]
