"""A resource type without warehouse tables, kept whole in `fhir_resource`.

One class per type (made by `generic_kind`), all sharing the table: a row is the body as
sent without `id` and `meta` (so a read answers exactly what was sent, with our id and
meta), its type, and the patient of its compartment when it names one stored here. Every
write refreshes the search values of the row (`fhir_search_value`). References inside the
body never block a write: they are kept as sent. The generic interactions of
resources/base.py do the rest (versions, If-Match, conditional writes, history).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any, ClassVar

import orjson
from sqlalchemy import Connection, select
from sqlalchemy.engine import RowMapping

from codoc_fhir.config import Settings
from codoc_fhir.resources.base import Referrer, Resource
from codoc_fhir.resources.generic.definitions import TypeDefinition, type_definition
from codoc_fhir.resources.generic.extract import compartment_patients, search_rows
from codoc_fhir.resources.generic.search import search_params
from codoc_fhir.warehouse.schema import dwh_patient, fhir_resource, fhir_search_value

NOT_KEPT = ("resourceType", "id", "meta")  # `meta` is the server's (version, lastUpdated)
# The typed columns of a search value: every row of one INSERT names them all.
VALUE_COLUMNS = [
    column.name
    for column in fhir_search_value.columns
    if column.name not in ("search_value_num", "resource_num", "resource_type")
]


class StoredResource(Resource):
    """The mapping shared by every stored type (a subclass per type names it)."""

    table = fhir_resource
    keeps_elements = False  # the body is stored whole
    definition: ClassVar[TypeDefinition]

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def scope(self) -> Any:
        return fhir_resource.c.resource_type == self.fhir_type

    # --- mapping -----------------------------------------------------------------------

    def to_fhir(self, row: RowMapping, related: dict[str, Any]) -> dict[str, Any]:
        kept = orjson.loads(row["resource_json"])
        return {"resourceType": self.fhir_type, "id": self.fhir_id(row["resource_num"]), **kept}

    def to_values(
        self, conn: Connection, body: dict[str, Any], current: RowMapping | None
    ) -> dict[str, Any]:
        kept = {key: value for key, value in body.items() if key not in NOT_KEPT}
        return {
            "resource_type": self.fhir_type,
            "patient_num": self.compartment_patient(conn, body),
            "resource_json": orjson.dumps(kept).decode(),
        }

    def compartment_patient(self, conn: Connection, body: dict[str, Any]) -> int | None:
        """The first patient stored here that a compartment parameter names (None: none,
        or only patients stored elsewhere: the reference is kept as sent all the same)."""
        if self.patient_column_name is None:
            return None
        for number in compartment_patients(self.definition, body):
            found = conn.execute(
                select(dwh_patient.c.patient_num).where(dwh_patient.c.patient_num == number)
            ).scalar()
            if found is not None:
                return int(found)
        return None

    def write_children(self, conn: Connection, num: int, body: dict[str, Any]) -> None:
        """The search values, extracted again from the body just written."""
        conn.execute(fhir_search_value.delete().where(fhir_search_value.c.resource_num == num))
        blank = dict.fromkeys(VALUE_COLUMNS)
        rows = [
            {**blank, **row, "resource_num": num, "resource_type": self.fhir_type}
            for row in search_rows(self.definition, body)
        ]
        if rows:
            conn.execute(fhir_search_value.insert(), rows)

    # --- delete ------------------------------------------------------------------------

    def referrers(self) -> Sequence[Referrer]:
        """Stored resources whose search values point at this one block its deletion."""
        fhir_type = self.fhir_type
        return (
            Referrer(
                fhir_search_value,
                "ref_num",
                str,
                group_by="resource_type",
                where=lambda table: table.c.ref_type == fhir_type,
            ),
        )

    def before_delete(self, conn: Connection, num: int) -> None:
        conn.execute(fhir_search_value.delete().where(fhir_search_value.c.resource_num == num))


@cache
def generic_kind(name: str) -> type[StoredResource]:
    """The class of one stored type: its name, R4B search parameters, compartment (made
    once per process, whatever the number of registries built)."""
    definition = type_definition(name)
    attributes = {
        "fhir_type": name,
        "label": name,
        "codoc_path": name.lower(),
        "definition": definition,
        "search_params": search_params(definition.params),
        "patient_column_name": "patient_num" if definition.compartment else None,
        "__doc__": f"{name}, stored whole (fhir_resource).",
    }
    return type(f"Stored{name}", (StoredResource,), attributes)
