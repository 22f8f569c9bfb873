"""Patient: `dwh_patient` rows and their identifiers (IPPs) in `dwh_patient_ipphist`.

Multi-IPP: every usual identifier is one ipphist row (system in origin_patient_id, "HIS"
when none was sent), the first one sent is the master. Merges (`link` replaced-by) live in
is_merged / merged_into. telecom[] and address[] are kept as sent (JSON) and copied into the
published contact columns for SQL users.
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
    format_datetime,
    parse_date,
    parse_datetime,
    utc_now,
)
from codoc_fhir.fhir.errors import Duplicate, Invalid, Required
from codoc_fhir.fhir.references import reference_dict
from codoc_fhir.fhir.validation import check_code, check_length, require, validate_resource
from codoc_fhir.resources import links, lookups
from codoc_fhir.resources.base import Referrer, Resource
from codoc_fhir.resources.concepts import fact_referrer
from codoc_fhir.resources.patient_search import (
    DEATH_CODE,
    GENDER_TO_SEX,
    PATIENT_SEARCH,
    SEX_TO_GENDER,
)
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

DEFAULT_IDENTIFIER_SYSTEM = "HIS"
MAX_MERGE_CHAIN = 1000


def clipped(value: Any, limit: int) -> str | None:
    """A copy for a convenience column: cut to the column's size (the JSON keeps it whole)."""
    return value[:limit] if isinstance(value, str) and value else None


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
            query = select(dwh_patient_ipphist.c.patient_num).where(
                dwh_patient_ipphist.c.origin_patient_id == system,
                dwh_patient_ipphist.c.hospital_patient_id == value,
            )
            owner = lookups.known(("ipp", system, value), partial(_scalar, conn, query))
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
        """New patients: their identifier rows in one statement (nothing to replace)."""
        rows = [row for num, body in zip(nums, bodies, strict=True) for row in ipp_rows(num, body)]
        if rows:
            conn.execute(dwh_patient_ipphist.insert(), rows)

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


# --- input mappings (pure unless they take a connection) -------------------------------


# v2-0203 identifier types that name a patient record (an IPP); every other typed
# identifier (SSN, driver's licence, passport...) is kept with the row, not an IPP.
IDENTIFIER_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v2-0203"
IPP_TYPES = frozenset({"MR", "MRT", "PI", "PT"})


def is_ipp(item: Any) -> bool:
    """Whether a sent identifier is an IPP: of use `usual` (or none), with a value, and
    untyped or typed as a patient record number (MR, MRT, PI, PT of v2-0203); every other
    one (official, secondary or old ones, SSN, driver's licence, passport, a type with only
    a text) is kept with the row."""
    if not has_value(item) or item.get("use", "usual") != "usual":
        return False
    kind = item.get("type")
    if not kind:
        return True
    return any(
        coding.get("code") in IPP_TYPES and coding.get("system") in (None, IDENTIFIER_TYPE_SYSTEM)
        for coding in kind.get("coding") or []
    )


def is_server_official(item: dict[str, Any]) -> bool:
    """The server's own identifier, as a read answers it (official, no system)."""
    return item.get("use") == "official" and not item.get("system")


def has_value(item: Any) -> bool:
    value = item.get("value") if isinstance(item, dict) else None
    return isinstance(value, str) and bool(value.strip())


def _scalar(conn: Connection, query: Any) -> Any:
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


def ipp_list(body: dict[str, Any]) -> list[tuple[str, str]]:
    """(system, value) of the IPP identifiers, "HIS" by default. A patient sent without
    any (only an official or a typed identifier, as some exports do) takes its first
    identifier with a value as IPP; one at least is required."""
    found: list[tuple[str, str]] = []
    sent = body.get("identifier") or []
    fallback = [item for item in sent if has_value(item) and not is_server_official(item)]
    chosen = [item for item in sent if is_ipp(item)] or fallback[:1]
    for position, item in enumerate(sent):
        if not any(item is ipp for ipp in chosen):
            continue
        field = f"identifier[{position}]"
        pair = (
            check_length(item.get("system") or DEFAULT_IDENTIFIER_SYSTEM, 255, f"{field}.system"),
            check_length(item["value"], 100, f"{field}.value"),
        )
        if pair not in found:
            found.append(pair)
    if not found:
        raise Required(
            "Field 'identifier' is required: at least one identifier with a value (the IPP)",
            expression=["identifier"],
        )
    return found


def name_values(names: list[dict[str, Any]]) -> dict[str, Any]:
    """The first name with a family or given part that is not a maiden name -> lastname /
    firstname (given names joined by a space); the first maiden name -> maiden_name. Other
    names (a nickname, a text-only one) are kept with the row."""
    main = (
        next(
            (
                name
                for name in names
                if name.get("use") != "maiden" and (name.get("family") or name.get("given"))
            ),
            None,
        )
        or {}
    )
    maiden = next((name for name in names if name.get("use") == "maiden"), None) or {}
    given = " ".join(part for part in main.get("given") or [] if part) or None
    return {
        "lastname": check_length(main.get("family"), 120, "name[0].family"),
        "firstname": check_length(given, 120, "name[0].given"),
        "maiden_name": check_length(maiden.get("family"), 120, "name.family (maiden)"),
    }


def death_values(body: dict[str, Any]) -> dict[str, Any]:
    """deceasedDateTime -> death_code 'd' + death_date; deceasedBoolean true -> 'd' only.

    deceasedBoolean false is stored as the warehouse's "alive" (death_code null).
    """
    if body.get("deceasedDateTime") is not None:
        when = parse_datetime(body["deceasedDateTime"], "deceasedDateTime")
        return {"death_code": DEATH_CODE, "death_date": when}
    if body.get("deceasedBoolean"):
        return {"death_code": DEATH_CODE, "death_date": None}
    return {"death_code": None, "death_date": None}


def contact_values(body: dict[str, Any]) -> dict[str, Any]:
    """telecom[]/address[] as sent, plus copies into the published contact columns."""
    telecom = body.get("telecom") or []
    addresses = body.get("address") or []
    phone: dict[str, Any] = next((item for item in telecom if item.get("system") == "phone"), {})
    email: dict[str, Any] = next((item for item in telecom if item.get("system") == "email"), {})
    home = next((item for item in addresses if item.get("use") == "home"), None)
    address = home or (addresses[0] if addresses else {})
    lines = ", ".join(line for line in address.get("line") or [] if line)
    return {
        "telecom_json": dump_json(telecom),
        "address_json": dump_json(addresses),
        "phone_number": clipped(phone.get("value"), 50),
        "email": clipped(email.get("value"), 500),
        "residence_address": clipped(lines or address.get("text"), 1000),
        "residence_city": clipped(address.get("city"), 200),
        "zip_code": clipped(address.get("postalCode"), 30),
        "residence_country": clipped(address.get("country"), 100),
    }


def merge_values(conn: Connection, link_list: list[dict[str, Any]], num: int | None) -> dict:
    """link[] replaced-by -> is_merged/merged_into: target exists, not itself, no cycle."""
    if not link_list:
        return {"is_merged": False, "merged_into": None}
    for position, link in enumerate(link_list):
        if link.get("type") != "replaced-by":
            raise Invalid(
                f"Unsupported link type {link.get('type')!r}: only 'replaced-by' is supported",
                expression=[f"link[{position}].type"],
            )
    if len(link_list) > 1:
        raise Invalid("A patient can be replaced by one patient only", expression=["link"])
    target = links.patient_num(conn, link_list[0].get("other"), "link[0].other")
    if target == num:
        raise Invalid("A patient cannot be replaced by itself", expression=["link[0].other"])
    check_no_merge_cycle(conn, target, num)
    return {"is_merged": True, "merged_into": target}


def check_no_merge_cycle(conn: Connection, target: int, num: int | None) -> None:
    """Following merged_into from `target` must never come back to `num`."""
    current: int | None = target
    for _ in range(MAX_MERGE_CHAIN):
        if current is None or num is None:
            return
        if current == num:
            raise Invalid(
                f"Merging Patient {num} into Patient {target} would create a cycle",
                expression=["link[0].other"],
            )
        current = conn.execute(
            select(dwh_patient.c.merged_into).where(dwh_patient.c.patient_num == current)
        ).scalar()


def dump_json(elements: list[Any]) -> str | None:
    return json.dumps(elements, separators=(",", ":"), ensure_ascii=False) if elements else None


# --- output mappings (pure) ------------------------------------------------------------


def answer_names(row: RowMapping) -> list[dict[str, Any]]:
    names: list[dict[str, Any]] = []
    if row["lastname"] or row["firstname"]:
        name: dict[str, Any] = {}
        if row["lastname"]:
            name["family"] = row["lastname"]
        if row["firstname"]:
            name["given"] = [row["firstname"]]
        names.append(name)
    if row["maiden_name"]:
        names.append({"use": "maiden", "family": row["maiden_name"]})
    return names


def answer_death(row: RowMapping) -> dict[str, Any]:
    if row["death_date"] is not None:
        return {"deceasedDateTime": format_datetime(row["death_date"])}
    if row["death_code"] == DEATH_CODE:
        return {"deceasedBoolean": True}
    return {}
