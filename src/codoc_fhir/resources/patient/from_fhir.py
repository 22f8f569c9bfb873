"""Patient from FHIR: the identifiers (IPPs), names, death, contacts and merge link of a
sent Patient, as dwh_patient columns (pure unless they take a connection)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, select

from codoc_fhir.fhir.dates import (
    parse_datetime,
)
from codoc_fhir.fhir.errors import Invalid, Required
from codoc_fhir.fhir.validation import check_length
from codoc_fhir.resources import links
from codoc_fhir.resources.patient.search_params import (
    DEATH_CODE,
)
from codoc_fhir.warehouse.schema import (
    dwh_patient,
)

DEFAULT_IDENTIFIER_SYSTEM = "HIS"
MAX_MERGE_CHAIN = 1000


def clipped(value: Any, limit: int) -> str | None:
    """A copy for a convenience column: cut to the column's size (the JSON keeps it whole)."""
    return value[:limit] if isinstance(value, str) and value else None


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
