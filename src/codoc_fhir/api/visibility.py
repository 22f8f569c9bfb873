"""The one place where a resource is allowed into an answer.

A direct read, the matches and the `_include`/`_revinclude` resources of a search (also a
Bundle entry's), `Patient/{id}/$everything` and `$export` all ask the caller's
`Visibility` which rows of a kind it may receive. The answer comes from the token alone,
type by type: its scopes must grant the interaction on the row's own FHIR type (an
included DocumentReference needs a DocumentReference scope, whatever type was searched),
and a grant that comes only from `patient/` scopes limits that type to the token's
patient. A row the caller may not receive is left out of an answer, or answers 404 when it
is the resource addressed (its existence is not revealed). With auth off every row is
visible.

Errors follow the same rule: a patient-scoped writer whose change collides with data it
cannot see (another patient's IPP) gets 403 without the details a 409 would give.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select
from starlette.requests import Request

from codoc_fhir.api.auth import Forbidden, Principal
from codoc_fhir.fhir.errors import FhirError, NotFound
from codoc_fhir.resources.base import Resource
from codoc_fhir.search.clauses import patient_column, restriction

# What an answer's resources are checked for: an included or exported resource is read.
READ = "read"


@dataclass(frozen=True)
class Visibility:
    """What one caller may receive; `principal` is None when auth is off."""

    principal: Principal | None

    @classmethod
    def of(cls, request: Request) -> Visibility:
        return cls(getattr(request.state, "principal", None))

    def patient(self, fhir_type: str, interaction: str = READ) -> int | None:
        """The patient_num the caller is confined to on `fhir_type` (None: every patient).

        Raises Forbidden when no scope grants `interaction` on `fhir_type`.
        """
        if self.principal is None:
            return None
        return self.principal.access(fhir_type, interaction)

    def rows(self, kind: Resource, interaction: str = READ) -> Any | None:
        """The SQL condition on `kind`'s table of the rows the caller may receive; None
        when its scopes allow no row of the kind at all."""
        try:
            patient = self.patient(kind.fhir_type, interaction)
        except Forbidden:
            return None
        return restriction(kind, patient, None)

    def check(self, conn: Connection, kind: Resource, num: int, interaction: str = READ) -> None:
        """The addressed row `num` of `kind` may be answered: 403 when the scopes refuse the
        type, 404 when the row is another patient's (as if it did not exist)."""
        patient = self.patient(kind.fhir_type, interaction)
        column = patient_column(kind)
        if patient is None or column is None:
            return
        owner = conn.execute(select(column).where(kind.key == num)).scalar()
        if owner != patient:
            raise NotFound(f"{kind.fhir_type} with ID {kind.fhir_id(num)} does not exist")


def withheld(request: Request, error: FhirError) -> FhirError:
    """`error` as the caller may see it: under a patient-scoped token a 409 (a duplicate
    identifier, a blocked delete) may name another patient's data, so it becomes a 403
    that names nothing."""
    if error.status != 409 or getattr(request.state, "patient_restriction", None) is None:
        return error
    return Forbidden(
        "A patient-scoped token cannot make this change: it conflicts with existing data"
    )
