"""Version keeping: every create, update and delete leaves a row in dwh_resource_history.

The generic writes of `Resource` (resources/base.py) call `record_version` and
`record_deletion` in the transaction of the write, so a version exists exactly when the
write it describes committed. The row keeps the resource as it was answered, so that a
vread shows what a client saw at the time, whatever happens to the tables later.

Reading versions back (instance, type and system history, vread, 410 for deleted ids)
is here too, as SQL over the indexed history table; the Bundles are built in api/history.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import orjson
from sqlalchemy import Column, Connection, Table, and_, false, func, or_, select
from sqlalchemy.engine import RowMapping

from codoc_fhir.fhir.dates import utc_now
from codoc_fhir.fhir.errors import Gone, NotFound
from codoc_fhir.resources.lookups import among
from codoc_fhir.warehouse.copy import insert_many
from codoc_fhir.warehouse.schema import dwh_resource_history as history


class VersionedKind(Protocol):
    """What versioning needs of a resource kind (`resources.base.Resource` is one). A
    protocol, not an import of base: base calls this module, so this one cannot import it."""

    @property
    def fhir_type(self) -> str: ...

    @property
    def table(self) -> Table: ...

    @property
    def key(self) -> Column: ...

    def fhir_id(self, num: int) -> str: ...

    def patient_column(self) -> Column | None: ...

    def read(self, conn: Connection, num: int) -> dict[str, Any]: ...


METHODS = ("POST", "PUT", "PATCH", "DELETE")


# --- writing -------------------------------------------------------------------------------


def _patient_of(conn: Connection, kind: VersionedKind, num: int) -> int | None:
    column = kind.patient_column()
    if column is None:
        return None
    return conn.execute(select(column).where(kind.key == num)).scalar()


_ASK = object()  # record_version: the patient is not known, read it from the row


def record_version(
    conn: Connection,
    kind: VersionedKind,
    num: int,
    method: str,
    resource: dict[str, Any],
    *,
    patient: Any = _ASK,
) -> None:
    """Keep `resource` (as answered after a create, update or patch) as a version; the
    `patient` of the written row when the caller holds the row (one query less)."""
    version = int((resource.get("meta") or {}).get("versionId") or 1)
    if patient is _ASK:
        patient = _patient_of(conn, kind, num)
    resource_json = orjson.dumps(resource).decode()
    conn.execute(HISTORY_INSERT, version_values(kind, num, patient, version, method, resource_json))


def record_versions(
    conn: Connection,
    kind: VersionedKind,
    nums: Sequence[int],
    method: str,
    resources: Sequence[dict[str, Any]],
    when: datetime,
    *,
    patients: dict[int, Any] | None = None,
) -> None:
    """`record_version` for a batch of resources (Resource.create_many), in one statement;
    the patient of each from `patients` when the caller knows them, else read in one
    query."""
    if patients is None:
        column = kind.patient_column()
        patients = _patients_of(conn, kind, nums) if column is not None else {}
    rows = [
        {
            "fhir_type": kind.fhir_type,
            "fhir_id": kind.fhir_id(num),
            "table_name": kind.table.name,
            "table_key": num,
            "patient_num": patients.get(num),
            "version_id": int((resource.get("meta") or {}).get("versionId") or 1),
            "method": method,
            "history_date": when,
            "resource_json": orjson.dumps(resource).decode(),
        }
        for num, resource in zip(nums, resources, strict=True)
    ]
    insert_many(conn, history, rows)


def _patients_of(conn: Connection, kind: VersionedKind, nums: Sequence[int]) -> dict[int, Any]:
    column = kind.patient_column()
    assert column is not None
    query = select(kind.key, column).where(among(conn, kind.key, nums))
    return {num: patient for num, patient in conn.execute(query)}


def record_deletion(conn: Connection, kind: VersionedKind, row: RowMapping) -> None:
    """Keep the deletion of `row` as the version after its last one (no resource)."""
    num = row[kind.key.name]
    column = kind.patient_column()
    patient = row[column.name] if column is not None else None
    version = int(row["row_version"]) + 1
    conn.execute(HISTORY_INSERT, version_values(kind, num, patient, version, "DELETE", None))


# The INSERT of every version, built once (the values come as parameters): one per write.
HISTORY_INSERT = history.insert()


def version_values(
    kind: VersionedKind,
    num: int,
    patient: int | None,
    version: int,
    method: str,
    resource_json: str | None,
) -> dict[str, Any]:
    """The history row of one version, as HISTORY_INSERT takes it."""
    return {
        "fhir_type": kind.fhir_type,
        "fhir_id": kind.fhir_id(num),
        "table_name": kind.table.name,
        "table_key": num,
        "patient_num": patient,
        "version_id": version,
        "method": method,
        "history_date": utc_now(),
        "resource_json": resource_json,
    }


# --- reading -------------------------------------------------------------------------------


def _latest(conn: Connection, fhir_type: str, fhir_id: str) -> RowMapping | None:
    query = (
        select(history)
        .where(history.c.fhir_type == fhir_type, history.c.fhir_id == fhir_id)
        .order_by(history.c.version_id.desc())
        .limit(1)
    )
    return conn.execute(query).mappings().first()


def check_not_deleted(conn: Connection, kind: VersionedKind, num: int) -> None:
    """410 Gone when the missing row `num` of `kind` was deleted (else the caller's 404)."""
    latest = _latest(conn, kind.fhir_type, kind.fhir_id(num))
    if latest is not None and latest["method"] == "DELETE":
        raise Gone(f"{kind.fhir_type} with ID {kind.fhir_id(num)} was deleted")


def version_row(conn: Connection, kind: VersionedKind, num: int, version: int) -> RowMapping | None:
    query = select(history).where(
        history.c.fhir_type == kind.fhir_type,
        history.c.fhir_id == kind.fhir_id(num),
        history.c.version_id == version,
    )
    return conn.execute(query).mappings().first()


def vread(
    conn: Connection, kind: VersionedKind, num: int, version: int, patient: int | None = None
) -> dict[str, Any]:
    """Version `version` of the resource: 404 if it never existed, 410 if it is a delete.

    A resource written before versions were kept (or loaded by SQL) has no history row for
    its current version: the current read answers it. A patient-scoped caller (`patient`)
    gets a 404 for another patient's versions, deleted or not.
    """
    row = version_row(conn, kind, num, version)
    missing = NotFound(f"{kind.fhir_type}/{kind.fhir_id(num)} has no version {version}")
    owner = row["patient_num"] if row is not None else _patient_of(conn, kind, num)
    if patient is not None and owner != patient:
        raise missing
    if row is not None:
        if row["resource_json"] is None:
            raise Gone(f"Version {version} of {kind.fhir_type}/{kind.fhir_id(num)} is a deletion")
        return dict(orjson.loads(row["resource_json"]))
    try:
        current: dict[str, Any] | None = kind.read(conn, num)
    except Gone:  # deleted, and this version never was one of its versions
        current = None
    if current is not None and current["meta"]["versionId"] == str(version):
        return current
    raise missing


@dataclass(frozen=True)
class HistoryFilter:
    """Which versions a history interaction answers.

    `instance`: one resource (type, id); `kinds`: the kinds of a type history (None for
    the system history); `types`: for the system history, the types the caller may see;
    `patient`: a patient-scoped caller's patient; `since`/`at_*`: the `_since` and `_at`
    bounds; `before`: the paging cursor (history_num of the last entry answered).
    """

    instance: tuple[str, str] | None = None
    kinds: Sequence[VersionedKind] | None = None
    types: Sequence[str] | None = None
    patient: int | None = None
    since: datetime | None = None
    at_start: datetime | None = None
    at_end: datetime | None = None
    before: int | None = None


def _conditions(spec: HistoryFilter) -> list[Any]:
    conditions: list[Any] = []
    if spec.instance is not None:
        conditions += [
            history.c.fhir_type == spec.instance[0],
            history.c.fhir_id == spec.instance[1],
        ]
    if spec.kinds is not None:
        pairs = {(kind.fhir_type, kind.table.name) for kind in spec.kinds}
        conditions.append(
            or_(
                false(),
                *(
                    and_(history.c.fhir_type == name, history.c.table_name == table)
                    for name, table in sorted(pairs)
                ),
            )
        )
    if spec.types is not None:
        conditions.append(history.c.fhir_type.in_(list(spec.types)))
    if spec.patient is not None:
        conditions.append(history.c.patient_num == spec.patient)
    if spec.since is not None:
        conditions.append(history.c.history_date >= spec.since)
    if spec.at_start is not None and spec.at_end is not None:
        conditions += _current_during(spec.at_start, spec.at_end)
    return conditions


def _current_during(start: datetime, end: datetime) -> list[Any]:
    """Versions current at some moment of [start, end): written before its end and not
    replaced (by the next version of the same resource) before its start."""
    later = history.alias("later")
    replaced = (
        select(func.min(later.c.history_date))
        .where(
            later.c.fhir_type == history.c.fhir_type,
            later.c.fhir_id == history.c.fhir_id,
            later.c.version_id > history.c.version_id,
        )
        .scalar_subquery()
    )
    return [
        history.c.history_date < end,
        history.c.method != "DELETE",
        or_(replaced.is_(None), replaced > start),
    ]


def history_rows(
    conn: Connection, spec: HistoryFilter, count: int
) -> tuple[list[RowMapping], int, bool]:
    """(up to `count` versions newest first, the total matching, whether more follow)."""
    conditions = _conditions(spec)
    total = conn.execute(select(func.count()).select_from(history).where(*conditions)).scalar_one()
    if spec.before is not None:
        conditions.append(history.c.history_num < spec.before)
    query = (
        select(history).where(*conditions).order_by(history.c.history_num.desc()).limit(count + 1)
    )
    rows = list(conn.execute(query).mappings())
    return rows[:count], int(total), len(rows) > count


def stored_resource(row: RowMapping) -> dict[str, Any] | None:
    return dict(orjson.loads(row["resource_json"])) if row["resource_json"] else None
