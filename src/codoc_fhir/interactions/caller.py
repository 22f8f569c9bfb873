"""Who asks: the caller of an interaction, and the one authorization sequence.

Every interaction (a REST route, a Bundle entry, an internal caller such as the importer or
the demo) is run for a `Caller`: the principal of the token (None when auth is off or for
the server itself), the FHIR base its links are written against, and the patient it is
confined to for the interaction at hand. The sequence is always the same and written only
here: `allow` checks the token's scopes for the interaction on the type (403) and confines
the caller to the token's patient when the grant comes only from `patient/` scopes; then
`check` (reads) or `check_owner` (writes) holds the addressed row to that patient, and
`rows` says which rows of a kind may enter an answer (matches, `_include`, `$everything`).

A row the caller may not receive is left out of an answer, or answers 404 when it is the
resource addressed (its existence is not revealed). Errors follow the same rule: a
patient-scoped writer whose change collides with data it cannot see (another patient's
IPP) gets 403 without the details a 409 would give (`withheld`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Protocol

from sqlalchemy import Connection, select

from codoc_fhir.fhir.errors import FhirError, Forbidden, NotFound
from codoc_fhir.resources.base import Resource
from codoc_fhir.search.clauses import patient_column, restriction

# What an answer's resources are checked for: an included or exported resource is read.
READ = "read"


class Grants(Protocol):
    """What the interaction layer needs of a principal (api/auth.py's Principal)."""

    def access(self, fhir_type: str, interaction: str) -> int | None:
        """None for every patient, else the patient_num; Forbidden when not granted."""


@dataclass(frozen=True)
class Caller:
    """One caller: its grants (None: unrestricted), its FHIR base, its patient confinement
    for the current interaction (set by `allow`; None: every patient)."""

    principal: Grants | None = None
    base_url: str = ""
    patient_num: int | None = None

    @classmethod
    def system(cls, base_url: str = "") -> Caller:
        """The server itself (import, demo): every interaction on every row."""
        return cls(None, base_url, None)

    def allow(self, fhir_type: str, interaction: str) -> Caller:
        """This caller, allowed `interaction` on `fhir_type` and confined to what the grant
        allows; Forbidden when no scope grants it. Without a principal it is unchanged."""
        if self.principal is None:
            return self
        return replace(self, patient_num=self.principal.access(fhir_type, interaction))

    # --- what an answer may contain ---------------------------------------------------------

    def patient(self, fhir_type: str, interaction: str = READ) -> int | None:
        """The patient_num the caller is confined to on `fhir_type` (None: every patient).

        Raises Forbidden when no scope grants `interaction` on `fhir_type`.
        """
        if self.principal is None:
            return self.patient_num
        return self.principal.access(fhir_type, interaction)

    def rows(self, kind: Resource, interaction: str = READ) -> Any | None:
        """The SQL condition on `kind`'s table of the rows the caller may receive; None
        when its scopes allow no row of the kind at all. Checked on the row's own type:
        an included DocumentReference needs a DocumentReference scope."""
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

    # --- what a write may touch -------------------------------------------------------------

    def check_owner(
        self, conn: Connection, kind: Any, num: int, *, write: bool, created: bool = False
    ) -> None:
        """Confined to a patient, the row `num` of `kind` must be that patient's.

        Another patient's existing row answers 404 (its existence is not revealed); creating
        or moving a resource to another patient is 403; a row with no patient (Organization,
        CodeSystem) may be read but not written.
        """
        if self.patient_num is None:
            return
        column = kind.patient_column()
        if column is None:
            if write:
                raise Forbidden(f"A patient-scoped token cannot modify {kind.fhir_type} resources")
            return
        owner = conn.execute(select(column).where(kind.key == num)).scalar()
        if owner != self.patient_num and created:
            raise Forbidden(
                f"A patient-scoped token can only write its own patient's {kind.fhir_type}"
            )
        if owner != self.patient_num:
            raise NotFound(f"{kind.fhir_type} with ID {kind.fhir_id(num)} does not exist")

    def check_created(self, conn: Connection, kind: Resource, resource: dict[str, Any]) -> None:
        """A resource just created must be the confined caller's patient's (403)."""
        num = kind.parse_fhir_id(str(resource["id"]))
        if num is not None:
            self.check_owner(conn, kind, num, write=True, created=True)

    def withheld(self, error: FhirError) -> FhirError:
        """`error` as the caller may see it: confined to a patient, a 409 (a duplicate
        identifier, a blocked delete) may name another patient's data, so it becomes a 403
        that names nothing."""
        if error.status != 409 or self.patient_num is None:
            return error
        return Forbidden(
            "A patient-scoped token cannot make this change: it conflicts with existing data"
        )
