"""Group (cohorts): a researcher's set of patients, `dwh_cohort` and its members in
`dwh_cohort_patient` (CONTRACT section 11).

Only what a warehouse cohort is: `type: person`, `actual: true`, a `name`, members that
are existing Patients with an optional `period`. `quantity` is answered (the number of
members), never read. `Group/{id}/$export` (api/bulk_export.py) exports the members'
compartments.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, exists, false
from sqlalchemy.engine import RowMapping

from codoc_fhir.config import Settings
from codoc_fhir.fhir import identifiers
from codoc_fhir.fhir.dates import format_datetime, parse_datetime
from codoc_fhir.fhir.errors import Invalid, Required
from codoc_fhir.fhir.references import key_number, reference_dict
from codoc_fhir.fhir.validation import require, text_value
from codoc_fhir.resources import links
from codoc_fhir.resources.base import Resource, SearchParam, child_rows
from codoc_fhir.search import declare
from codoc_fhir.search.model import SearchFilter
from codoc_fhir.search.types import reference as reference_search
from codoc_fhir.warehouse.schema import dwh_cohort, dwh_cohort_patient


@dataclass(frozen=True)
class Member:
    patient_num: int
    start: datetime | None
    end: datetime | None


def parse_member(conn: Connection, value: Any, field: str) -> Member:
    """member[i]: an existing Patient (400 otherwise), an optional period."""
    if not isinstance(value, dict):
        raise Invalid(f"{field} must be an object", expression=[field])
    if value.get("inactive") is True:
        message = f"{field}.inactive: inactive members are not kept; leave them out"
        raise Invalid(message, expression=[f"{field}.inactive"], code="not-supported")
    if not value.get("entity"):
        raise Required(f"Field '{field}.entity' is required", expression=[f"{field}.entity"])
    patient = links.patient_num(conn, value["entity"], f"{field}.entity")
    period = value.get("period") or {}
    start = parse_datetime(period["start"], f"{field}.period.start") if "start" in period else None
    end = parse_datetime(period["end"], f"{field}.period.end") if "end" in period else None
    if start and end and end < start:
        raise Invalid(f"{field}.period ends before it starts", expression=[f"{field}.period"])
    return Member(patient, start, end)


def parse_members(conn: Connection, body: dict[str, Any]) -> list[Member]:
    members = body.get("member") or []
    if not isinstance(members, list):
        raise Invalid("member must be a list", expression=["member"])
    return [parse_member(conn, value, f"member[{n}]") for n, value in enumerate(members)]


def _member_clause(kind: Any, search_filter: SearchFilter) -> Any:
    """Groups with a member among the referenced Patients (an indexed EXISTS)."""
    belongs = dwh_cohort_patient.c.cohort_num == dwh_cohort.c.cohort_num
    if search_filter.missing is not None:
        found = exists().where(belongs)
        return ~found if search_filter.missing else found
    nums = []
    for value in search_filter.values:
        type_name, ident = reference_search.parse(value.text, search_filter.modifier)
        num = key_number(ident)
        if (type_name or "Patient").lower() == "patient" and num is not None:
            nums.append(num)
    if not nums:
        return false()
    found = exists().where(belongs, dwh_cohort_patient.c.patient_num.in_(nums))
    return ~found if search_filter.modifier == "not" else found


def group_params() -> dict[str, SearchParam]:
    """Group: name, member (a Patient reference), identifier."""
    columns = dwh_cohort.c
    return {
        "name": declare.string("name", columns.name),
        "member": declare.custom("member", "reference", _member_clause),
        "identifier": declare.token("identifier", columns.id_cohort_source, official=True),
    }


class Group(Resource):
    fhir_type = "Group"
    label = "Group"
    table = dwh_cohort
    codoc_path = "group"
    patient_column_name = None  # a cohort is no one patient's data
    search_params = group_params()

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def to_values(
        self, conn: Connection, body: dict[str, Any], current: RowMapping | None
    ) -> dict[str, Any]:
        if require(body, "type") != "person":
            raise Invalid("Group.type must be 'person': a cohort of patients", expression=["type"])
        if require(body, "actual") is not True:
            raise Invalid(
                "Group.actual must be true: a cohort lists its patients", expression=["actual"]
            )
        parse_members(conn, body)  # every member must exist before anything is written
        source_id = identifiers.single_usual_identifier(body)
        return {
            "name": text_value(require(body, "name"), "name", 400),
            "id_cohort_source": text_value(source_id, "identifier", 300) if source_id else None,
        }

    def write_children(self, conn: Connection, num: int, body: dict[str, Any]) -> None:
        self.before_delete(conn, num)
        members = parse_members(conn, body)
        if members:
            conn.execute(
                dwh_cohort_patient.insert(),
                [
                    {"cohort_num": num, "member_order": order, "patient_num": member.patient_num,
                     "period_start": member.start, "period_end": member.end}
                    for order, member in enumerate(members)
                ],
            )  # fmt: skip

    def before_delete(self, conn: Connection, num: int) -> None:
        conn.execute(dwh_cohort_patient.delete().where(dwh_cohort_patient.c.cohort_num == num))

    def load_related(self, conn: Connection, rows: Sequence[RowMapping]) -> dict[str, Any]:
        nums = [row["cohort_num"] for row in rows]
        members = dwh_cohort_patient.c
        return {"members": child_rows(conn, members.cohort_num, nums, members.member_order)}

    def to_fhir(self, row: RowMapping, related: dict[str, Any]) -> dict[str, Any]:
        num = row["cohort_num"]
        members = related["members"].get(num, [])
        resource: dict[str, Any] = {
            "resourceType": "Group",
            "id": str(num),
            "identifier": identifiers.official_and_usual(num, row["id_cohort_source"]),
            "type": "person",
            "actual": True,
            "name": row["name"],
            "quantity": len(members),
        }
        if members:
            resource["member"] = [self.member(member) for member in members]
        return resource

    @staticmethod
    def member(member: Any) -> dict[str, Any]:
        answer: dict[str, Any] = {"entity": reference_dict("Patient", member.patient_num)}
        period = {}
        if member.period_start is not None:
            period["start"] = format_datetime(member.period_start)
        if member.period_end is not None:
            period["end"] = format_datetime(member.period_end)
        if period:
            answer["period"] = period
        return answer
