"""The Patient kind: `dwh_patient` rows and their identifiers (IPPs) in `dwh_patient_ipphist`.

Multi-IPP: every usual identifier is one ipphist row (system in origin_patient_id, "HIS"
when none was sent), the first one sent is the master. Merges (`link` replaced-by) live in
is_merged / merged_into. telecom[] and address[] are kept as sent (JSON) and copied into the
published contact columns for SQL users. The mappings are in from_fhir.py and to_fhir.py,
the search parameters in search_params.py.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import partial
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.engine import RowMapping

from codoc_fhir.config import Settings
from codoc_fhir.fhir import identifiers
from codoc_fhir.fhir.dates import (
    as_utc,
    format_date,
    parse_date,
    utc_now,
)
from codoc_fhir.fhir.errors import Duplicate, Invalid
from codoc_fhir.fhir.references import reference_dict
from codoc_fhir.fhir.validation import check_code, require, validate_resource
from codoc_fhir.resources import links, lookups
from codoc_fhir.resources.base import Referrer, Resource, RowImage, row_images
from codoc_fhir.resources.concepts import fact_referrer
from codoc_fhir.resources.patient.from_fhir import (
    contact_values,
    death_values,
    ipp_list,
    merge_values,
    name_values,
)
from codoc_fhir.resources.patient.search_params import (
    GENDER_TO_SEX,
    PATIENT_SEARCH,
    SEX_TO_GENDER,
)
from codoc_fhir.resources.patient.to_fhir import answer_death, answer_names
from codoc_fhir.warehouse.copy import insert_many
from codoc_fhir.warehouse.schema import (
    dwh_document,
    dwh_enrsem,
    dwh_patient,
    dwh_patient_data,
    dwh_patient_ipphist,
    dwh_patient_mvt,
    dwh_patient_stay,
    fhir_resource,
)


class Patient(Resource):
    fhir_type = "Patient"
    label = "Patient"
    table = dwh_patient
    codoc_path = "patient"
    search_params = PATIENT_SEARCH
    batch_creates = True  # check_batch: the identifiers of a batch are distinct

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    # --- input -------------------------------------------------------------------------

    def validate(self, body: Any) -> dict[str, Any]:
        if isinstance(body, dict) and "deceasedBoolean" in body and "deceasedDateTime" in body:
            raise Invalid(
                "deceasedBoolean and deceasedDateTime are mutually exclusive: send at most one",
                expression=["deceased[x]"],
            )
        return validate_resource(body, self.fhir_type)

    def to_values(
        self, conn: Connection, body: dict[str, Any], current: RowMapping | None
    ) -> dict[str, Any]:
        num = current["patient_num"] if current is not None else None
        self.check_identifiers(conn, ipp_list(body), num)
        gender = check_code(require(body, "gender"), tuple(GENDER_TO_SEX), "gender")
        birth_date, precision = parse_date(require(body, "birthDate"), "birthDate")
        values: dict[str, Any] = {
            "sex": GENDER_TO_SEX[gender],
            "birth_date": birth_date,
            "birth_date_precision": precision,
        }
        values.update(name_values(body.get("name") or []))
        values.update(death_values(body))
        values.update(contact_values(body))
        values.update(self.managing_values(conn, body.get("managingOrganization")))
        values.update(merge_values(conn, body.get("link") or [], num))
        return values

    def check_identifiers(
        self, conn: Connection, ipps: list[tuple[str, str]], num: int | None
    ) -> None:
        """Each (system, value) may belong to no other patient (409 duplicate)."""
        for system, value in ipps:
            owner = lookups.known(("ipp", system, value), partial(_owner, conn, system, value))
            if owner is not None and owner != num:
                raise Duplicate(
                    f"Identifier {system}|{value} already belongs to Patient {owner}",
                    expression=["identifier"],
                )

    def check_batch(self, bodies: Sequence[dict[str, Any]]) -> None:
        """One at a time, a patient's identifier check sees the rows of the patients
        created before it: a batch where two share one is refused (then retried singly)."""
        ipps = [ipp for body in bodies for ipp in ipp_list(body)]
        if len(set(ipps)) != len(ipps):
            raise Duplicate("Two patients of the batch share an identifier")

    def prefetch(self, conn: Connection, bodies: Sequence[dict[str, Any]]) -> None:
        """The owners of the batch's identifiers in one query (check_identifiers' look-ups)."""
        wanted = {ipp for body in bodies for ipp in ipp_list(body)}
        ipphist = dwh_patient_ipphist.c
        values = {value for _, value in wanted}
        query = select(ipphist.origin_patient_id, ipphist.hospital_patient_id, ipphist.patient_num)
        found = conn.execute(query.where(lookups.among(conn, ipphist.hospital_patient_id, values)))
        owners = {(system, value): owner for system, value, owner in found}
        lookups.remember_all({("ipp", *ipp): owners.get(ipp) for ipp in wanted})

    def write_children_many(
        self, conn: Connection, nums: Sequence[int], bodies: Sequence[dict[str, Any]]
    ) -> None:
        """New patients: their identifier rows in one COPY (nothing to replace)."""
        rows = [row for num, body in zip(nums, bodies, strict=True) for row in ipp_rows(num, body)]
        insert_many(conn, dwh_patient_ipphist, rows)

    def new_row_images(
        self,
        conn: Connection,
        nums: Sequence[int],
        rows: Sequence[dict[str, Any]],
        bodies: Sequence[dict[str, Any]],
    ) -> tuple[list[RowImage], dict[str, Any]] | None:
        """New patients as a read gives them: the row's columns, and as related data the
        identifiers `write_children_many` writes (master first, in the order sent, as
        `load_related` orders them) and the managing organisations' names."""
        images = row_images(dwh_patient, self.key, nums, rows)
        if images is None:
            return None
        ipps = {num: ipp_list(body) for num, body in zip(nums, bodies, strict=True)}
        pairs = [(image["managing_org_level"], image["managing_org_num"]) for image in images]
        return images, {"ipps": ipps, "org_names": links.organization_names(conn, pairs)}

    def managing_values(self, conn: Connection, reference: Any) -> dict[str, Any]:
        """A warehouse Organization -> the managing_org columns; any other reference (an
        Organization stored whole, a conditional or display-only one) is kept as sent."""
        found = links.warehouse_organization(conn, reference, "managingOrganization")
        if found is None:
            return {"managing_org_level": None, "managing_org_num": None}
        level, org_num = found
        return {"managing_org_level": level.name, "managing_org_num": org_num}

    def write_children(self, conn: Connection, num: int, body: dict[str, Any]) -> None:
        """The identifier set is replaced: one ipphist row per IPP, the first is master."""
        conn.execute(dwh_patient_ipphist.delete().where(dwh_patient_ipphist.c.patient_num == num))
        conn.execute(dwh_patient_ipphist.insert(), ipp_rows(num, body))

    # --- delete ------------------------------------------------------------------------

    def referrers(self) -> Sequence[Referrer]:
        return (
            Referrer(dwh_patient_stay, "patient_num", "Encounter"),
            Referrer(dwh_patient_mvt, "patient_num", "Encounter"),
            Referrer(dwh_document, "patient_num", "DocumentReference"),
            fact_referrer(self.settings, "patient_num"),
            Referrer(dwh_enrsem, "patient_num", "Observation"),
            Referrer(dwh_patient_data, "patient_num", "Observation"),
            Referrer(dwh_patient, "merged_into", "Patient"),
            Referrer(fhir_resource, "patient_num", str, group_by="resource_type"),
        )

    def before_delete(self, conn: Connection, num: int) -> None:
        conn.execute(dwh_patient_ipphist.delete().where(dwh_patient_ipphist.c.patient_num == num))

    # --- output ------------------------------------------------------------------------

    def load_related(self, conn: Connection, rows: Sequence[RowMapping]) -> dict[str, Any]:
        nums = [row["patient_num"] for row in rows]
        ipphist = dwh_patient_ipphist.c
        query = (
            select(ipphist.patient_num, ipphist.origin_patient_id, ipphist.hospital_patient_id)
            .where(ipphist.patient_num.in_(nums))
            .order_by(ipphist.patient_num, ipphist.master_patient_id.desc(), ipphist.ipphist_num)
        )
        ipps: dict[int, list[tuple[str, str]]] = {}
        for patient, system, value in conn.execute(query):
            ipps.setdefault(patient, []).append((system, value))
        pairs = [(row["managing_org_level"], row["managing_org_num"]) for row in rows]
        return {"ipps": ipps, "org_names": links.organization_names(conn, pairs)}

    def to_fhir(self, row: RowMapping, related: dict[str, Any]) -> dict[str, Any]:
        num = row["patient_num"]
        found = [identifiers.official(num)]
        found += [identifiers.held(value, system) for system, value in related["ipps"].get(num, [])]
        resource: dict[str, Any] = {"resourceType": "Patient", "id": str(num), "identifier": found}
        names = answer_names(row)
        if names:
            resource["name"] = names
        if row["telecom_json"]:
            resource["telecom"] = json.loads(row["telecom_json"])
        resource["gender"] = SEX_TO_GENDER.get(row["sex"] or "", "unknown")
        if row["birth_date"] is not None:
            birth = as_utc(row["birth_date"])
            resource["birthDate"] = format_date(birth, row["birth_date_precision"])
        resource.update(answer_death(row))
        if row["address_json"]:
            resource["address"] = json.loads(row["address_json"])
        if row["managing_org_level"] and row["managing_org_num"] is not None:
            resource["managingOrganization"] = links.organization_reference(
                row["managing_org_level"], row["managing_org_num"], related["org_names"]
            )
        if row["is_merged"] and row["merged_into"] is not None:
            other = reference_dict("Patient", row["merged_into"])
            resource["link"] = [{"other": other, "type": "replaced-by"}]
        return resource


def _owner(conn: Connection, system: str, value: str) -> Any:
    """The patient an identifier belongs to; the query is built only when the batch's
    prefetch has not answered (building it for every patient cost 2 % of an import)."""
    ipphist = dwh_patient_ipphist.c
    query = select(ipphist.patient_num).where(
        ipphist.origin_patient_id == system, ipphist.hospital_patient_id == value
    )
    return conn.execute(query).scalar()


def ipp_rows(num: int, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The dwh_patient_ipphist rows of a patient's identifiers; the first is the master."""
    update_date = utc_now()
    return [
        {
            "patient_num": num,
            "origin_patient_id": system,
            "hospital_patient_id": value,
            "master_patient_id": position == 0,
            "update_date": update_date,
        }
        for position, (system, value) in enumerate(ipp_list(body))
    ]
