"""What the resources stored as `dwh_data` rows share (Procedure, MedicationRequest,
DiagnosticReport, lab Observation): the thesaurus binding, code, subject, encounter,
department/unit performers and the usual identifier (id_data_source).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, ClassVar

from sqlalchemy import Connection, select
from sqlalchemy.engine import RowMapping

from codoc_fhir.config import Settings
from codoc_fhir.fhir import identifiers
from codoc_fhir.fhir.errors import Invalid
from codoc_fhir.fhir.references import reference_dict
from codoc_fhir.fhir.validation import check_length
from codoc_fhir.resources import concepts, links
from codoc_fhir.resources.base import Resource, SearchParam
from codoc_fhir.search.declare import data_fact_params
from codoc_fhir.warehouse.schema import (
    dwh_data,
    dwh_thesaurus_data,
    dwh_thesaurus_department,
    dwh_thesaurus_unit,
)

ORG_LEVEL_SYSTEM = "urn:codoc:fhir:organization-level"


class DataFactResource(Resource):
    """A resource kind whose rows are `dwh_data` facts of one thesaurus."""

    table = dwh_data
    thesaurus_setting: ClassVar[str]  # the Settings attribute naming the thesaurus
    search_params: ClassVar[dict[str, SearchParam]] = data_fact_params()

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.thesaurus_code: str = getattr(settings, self.thesaurus_setting)

    def scope(self) -> Any:
        return dwh_data.c.thesaurus_code == self.thesaurus_code

    # --- input -------------------------------------------------------------------------

    def concept_num(self, conn: Connection, concept: Any, field: str) -> int:
        return concepts.resolve_concept(
            conn, self.thesaurus_code, concept, field, strict=self.settings.strict_codes
        )

    def common_values(self, conn: Connection, body: dict[str, Any]) -> dict[str, Any]:
        """subject, encounter and the usual identifier, checked against the warehouse."""
        patient = links.patient_num(conn, body.get("subject"), "subject")
        encounter = body.get("encounter")
        return {
            "patient_num": patient,
            "thesaurus_code": self.thesaurus_code,
            "stay_num": links.stay_num(conn, encounter, "encounter", patient)
            if encounter
            else None,
            "id_data_source": check_length(
                identifiers.single_usual_identifier(body), 300, "identifier"
            ),
        }

    def performer_values(
        self, conn: Connection, actors: list[tuple[Any, str]], levels: tuple[str, ...]
    ) -> dict[str, Any]:
        """department_num / unit_num from performer actor references (one of each at most)."""
        found: dict[str, int] = {}
        for actor, field in actors:
            level, num = links.organization(conn, actor, field, levels)
            if level.name in found and found[level.name] != num:
                raise Invalid(
                    f"At most one {level.name} performer is supported", expression=[field]
                )
            found[level.name] = num
        return {"department_num": found.get("department"), "unit_num": found.get("unit")}

    # --- output ------------------------------------------------------------------------

    def base_query(self) -> Any:
        """The facts of this thesaurus with their concept and performer names, in one query."""
        concept, department, unit = dwh_thesaurus_data, dwh_thesaurus_department, dwh_thesaurus_unit
        return (
            select(
                dwh_data,
                concept.c.concept_code,
                concept.c.concept_str,
                department.c.department_str,
                unit.c.unit_str,
            )
            .join(concept, concept.c.thesaurus_data_num == dwh_data.c.thesaurus_data_num)
            .outerjoin(department, department.c.department_num == dwh_data.c.department_num)
            .outerjoin(unit, unit.c.unit_num == dwh_data.c.unit_num)
            .where(self.scope())
        )

    def load_related(self, conn: Connection, rows: Sequence[RowMapping]) -> dict[str, Any]:
        org_names = {
            (level, row[f"{level}_num"]): row[f"{level}_str"]
            for row in rows
            for level in ("department", "unit")
            if row[f"{level}_num"] is not None
        }
        return {
            "concepts": {
                row["thesaurus_data_num"]: concepts.Concept(
                    row["thesaurus_code"], row["concept_code"], row["concept_str"]
                )
                for row in rows
            },
            "org_names": org_names,
        }

    def identity(self, row: RowMapping) -> dict[str, Any]:
        """resourceType, id and identifier[] (official, then the usual one)."""
        num = row["data_num"]
        found = identifiers.official_and_usual(num, row["id_data_source"])
        return {"resourceType": self.fhir_type, "id": str(num), "identifier": found}

    def code(self, row: RowMapping, related: dict[str, Any]) -> dict[str, Any]:
        return concepts.codeable_concept(related["concepts"][row["thesaurus_data_num"]])

    def subject_and_encounter(self, row: RowMapping) -> dict[str, Any]:
        answer: dict[str, Any] = {"subject": reference_dict("Patient", row["patient_num"])}
        if row["stay_num"] is not None:
            answer["encounter"] = reference_dict("Encounter", row["stay_num"])
        return answer

    def performer_actors(self, row: RowMapping, related: dict[str, Any]) -> list[tuple[str, dict]]:
        """(level, actor reference) of the department and unit performers."""
        actors = []
        for level in ("department", "unit"):
            if row[f"{level}_num"] is not None:
                ref = links.organization_reference(level, row[f"{level}_num"], related["org_names"])
                actors.append((level, ref))
        return actors


def performer_function(level: str) -> dict[str, Any]:
    """The function the server sets on a performer: its organisation level."""
    return {"coding": [{"system": ORG_LEVEL_SYSTEM, "code": level, "display": level.title()}]}


def dump_extra(elements: dict[str, Any]) -> str | None:
    """FHIR elements with no warehouse column, kept as JSON text (None when empty)."""
    kept = {name: value for name, value in elements.items() if value is not None}
    return json.dumps(kept, separators=(",", ":"), sort_keys=True) if kept else None


def load_extra(text: str | None) -> dict[str, Any]:
    return json.loads(text) if text else {}
