"""Organizations outside the four levels of the hospital tree: payers, insurers, external
laboratories, an Organization without any type. The warehouse has no table for them, so
they are stored whole like the R4B types it does not map (resources/generic), with ids
`org-N`, and answered exactly as sent (CONTRACT section 9)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import RowMapping

from codoc_fhir.fhir.errors import Invalid
from codoc_fhir.resources.generic.resource import generic_kind
from codoc_fhir.resources.organization.levels import level_of


class PlainOrganization(generic_kind("Organization")):  # type: ignore[misc]
    """An Organization that names no level of the tree: stored whole, id `org-N`."""

    id_prefix = "org-"

    def accepts_create(self, body: dict[str, Any]) -> bool:
        return body.get("resourceType") == self.fhir_type and level_of(body) is None

    def to_values(
        self, conn: Connection, body: dict[str, Any], current: RowMapping | None
    ) -> dict[str, Any]:
        if level_of(body) is not None:
            raise Invalid(
                "This Organization is outside the hospital tree: its type cannot name a level "
                "(site, department, unit); create an Organization of the tree instead",
                expression=["Organization.type"],
            )
        return super().to_values(conn, body, current)
