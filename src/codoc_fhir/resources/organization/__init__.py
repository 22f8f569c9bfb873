"""Organization: the hospital tree (instance > site > department > unit, one kind per level,
kind.py) and the Organizations outside it (plain.py), with the mappings from and to FHIR,
the search parameters and the read-side queries.

The names below are the ones the former modules `organization.py` and
`organization_plain.py` offered, so `from codoc_fhir.resources.organization import X`
keeps working.
"""

from codoc_fhir.resources.organization.from_fhir import (
    CODE_LENGTH,
    DERIVED_LENGTH,
    DERIVED_PREFIX,
    EXTENSION_BASE,
    PARENT_REQUIRED,
    UNIT_PERIOD_URL,
    UNIT_PERIOD_URLS,
    derived_code,
    period_date,
)
from codoc_fhir.resources.organization.kind import (
    ORGANIZATION_KINDS,
    DepartmentOrganization,
    InstanceOrganization,
    OrganizationKind,
    SiteOrganization,
    UnitOrganization,
)
from codoc_fhir.resources.organization.levels import (
    HL7_CODES,
    HL7_TYPE_SYSTEM,
    PARENT_COLUMNS,
    TYPE_CODES,
    level_of,
    with_article,
)
from codoc_fhir.resources.organization.plain import PlainOrganization
from codoc_fhir.resources.organization.queries import activity_counts, child_counts
from codoc_fhir.resources.organization.search_params import ORGANIZATION_SEARCH
from codoc_fhir.resources.organization.to_fhir import (
    COUNTERS,
    answer_identifiers,
    counter_url,
    type_codings,
)

__all__ = [
    "CODE_LENGTH",
    "COUNTERS",
    "DERIVED_LENGTH",
    "DERIVED_PREFIX",
    "EXTENSION_BASE",
    "HL7_CODES",
    "HL7_TYPE_SYSTEM",
    "ORGANIZATION_KINDS",
    "ORGANIZATION_SEARCH",
    "PARENT_COLUMNS",
    "PARENT_REQUIRED",
    "TYPE_CODES",
    "UNIT_PERIOD_URL",
    "UNIT_PERIOD_URLS",
    "DepartmentOrganization",
    "InstanceOrganization",
    "OrganizationKind",
    "PlainOrganization",
    "SiteOrganization",
    "UnitOrganization",
    "activity_counts",
    "answer_identifiers",
    "child_counts",
    "counter_url",
    "derived_code",
    "level_of",
    "period_date",
    "type_codings",
    "with_article",
]
