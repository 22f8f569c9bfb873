"""The registry: every resource kind the server serves, grouped by FHIR type.

Routes, the CapabilityStatement and search validation are generated from it. Adding a
resource is one module and one line in `RESOURCE_CLASSES`; every R4B type no module maps is
served by a stored kind (resources/generic), after the mapped ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from codoc_fhir.config import DEFAULT_MAX_PAGE_BYTES, Settings
from codoc_fhir.fhir.errors import Invalid, NotFound
from codoc_fhir.fhir.json_types import check_json_types
from codoc_fhir.resources.base import Resource
from codoc_fhir.resources.codesystem import CodeSystem
from codoc_fhir.resources.condition import Condition
from codoc_fhir.resources.diagnostic_report import DiagnosticReport
from codoc_fhir.resources.document_reference import DocumentReference
from codoc_fhir.resources.encounter_movement import EncounterMovement
from codoc_fhir.resources.encounter_stay import EncounterStay
from codoc_fhir.resources.generic.definitions import generic_type_names
from codoc_fhir.resources.generic.resource import generic_kind
from codoc_fhir.resources.group import Group
from codoc_fhir.resources.medication_request import MedicationRequest
from codoc_fhir.resources.observation_lab import LabObservation
from codoc_fhir.resources.observation_patient_data import PatientDataObservation
from codoc_fhir.resources.observation_phenotype import ObservationPhenotype
from codoc_fhir.resources.organization import ORGANIZATION_KINDS, PlainOrganization
from codoc_fhir.resources.patient import Patient
from codoc_fhir.resources.procedure import Procedure
from codoc_fhir.search.cursor import CursorCodec

RESOURCE_CLASSES: list[Callable[[Settings], Resource]] = [
    *ORGANIZATION_KINDS,
    PlainOrganization,
    Patient,
    EncounterStay,
    EncounterMovement,
    CodeSystem,
    DocumentReference,
    ObservationPhenotype,
    PatientDataObservation,
    LabObservation,
    MedicationRequest,
    DiagnosticReport,
    Procedure,
    Condition,
    Group,
]


@dataclass
class FhirType:
    """A FHIR resource type and the kinds (tables) that serve it, told apart by id prefix."""

    name: str
    kinds: list[Resource] = field(default_factory=list)

    @property
    def codoc_path(self) -> str:
        return self.name.lower()

    def resolve_id(self, ident: str) -> tuple[Resource, int]:
        """The kind and primary key a FHIR id names; 404 when none matches."""
        for kind in sorted(self.kinds, key=lambda item: -len(item.id_prefix)):
            num = kind.parse_fhir_id(ident)
            if num is not None:
                return kind, num
        raise NotFound(f"{self.name} with ID {ident} does not exist")

    def resolve_codoc_key(self, conn: Connection, key: str) -> tuple[Resource, int]:
        """Codoc paths address a resource by id, except where a kind says otherwise."""
        for kind in self.kinds:
            resolver = getattr(kind, "resolve_codoc_key", None)
            if resolver is not None:
                return kind, resolver(conn, key)
        return self.resolve_id(key)

    def kind_for_create(self, body: Any, *, check_types: bool = True) -> Resource:
        """The kind whose `accepts_create` takes the body (JSON types checked first, unless
        the caller's create checks them anyway: the importer's batch, where a body of a
        wrong type fails there, or here, and then goes one by one, which reports it)."""
        if len(self.kinds) == 1 or not isinstance(body, dict):
            return self.kinds[0]
        if check_types:
            check_json_types(body, self.name)
        for kind in self.kinds:
            if kind.accepts_create(body):
                return kind
        raise Invalid(f"This body does not describe any kind of {self.name} served here")


def resolve_bare_number(kind: Resource, ident: str) -> int:
    """The row a Codoc sub-path (`encounter/movement/3`) names: the bare number only, so
    that `encounter/movement/movement-1` reaches nothing."""
    num = kind.parse_fhir_id(kind.id_prefix + ident) if ident.isdigit() else None
    if num is None:
        raise NotFound(f"{kind.fhir_type} with ID {kind.id_prefix}{ident} does not exist")
    return num


@dataclass(frozen=True)
class Address:
    """What a relative URL (`Patient`, `patient/1`, `encounter/movement/3`) names: the kinds
    created or searched there and, for an instance URL, the key of one row."""

    fhir_type: FhirType
    kinds: tuple[Resource, ...]
    key: str | None = None
    codoc: bool = False  # a Codoc path: keys as the Codoc routes read them
    sub_path: bool = False  # a kind's own Codoc path: keys are bare numbers

    def kind_for_create(self, body: Any) -> Resource:
        if self.sub_path:
            return self.kinds[0]
        return self.fhir_type.kind_for_create(body)

    def resolve(self, conn: Connection) -> tuple[Resource, int]:
        """The kind and primary key of the instance named (404 when none)."""
        if self.key is None:
            raise Invalid(f"{self.fhir_type.name} needs an id here")
        if self.sub_path:
            return self.kinds[0], resolve_bare_number(self.kinds[0], self.key)
        if self.codoc:
            return self.fhir_type.resolve_codoc_key(conn, self.key)
        return self.fhir_type.resolve_id(self.key)


class Registry:
    """All FHIR types served, by name, plus the Codoc sub-paths of particular kinds."""

    def __init__(
        self,
        kinds: list[Resource],
        *,
        max_search_values: int = 100,
        max_page_bytes: int = DEFAULT_MAX_PAGE_BYTES,
        cursor_secret: str | None = None,
    ) -> None:
        # The cost limits every search (type search or Bundle entry) is held to, and the
        # key of its paging cursors (random when none is given: one process only).
        self.max_search_values = max_search_values
        self.max_page_bytes = max_page_bytes
        self.cursors = CursorCodec(cursor_secret)
        self.types: dict[str, FhirType] = {}
        for kind in kinds:
            self.types.setdefault(kind.fhir_type, FhirType(kind.fhir_type)).kinds.append(kind)
        # What `address` looks a path up in, built once: it routes every Bundle entry, and
        # walking the hundred-odd kinds for each cost more than the entry's own routing.
        self._sub_paths = [
            kind for kind in self.kinds() if kind.codoc_path != kind.fhir_type.lower()
        ]
        self._by_segment: dict[str, FhirType] = {}
        for fhir_type in self:
            self._by_segment.setdefault(fhir_type.name, fhir_type)
            self._by_segment.setdefault(fhir_type.codoc_path, fhir_type)

    def __iter__(self) -> Iterator[FhirType]:
        return iter(self.types.values())

    def kinds(self) -> Iterator[Resource]:
        for fhir_type in self:
            yield from fhir_type.kinds

    def sub_paths(self) -> list[Resource]:
        """Kinds with a Codoc path of their own (`encounter/movement`), taking bare numbers."""
        return list(self._sub_paths)

    def address(self, path: str) -> Address:
        """What a relative URL names, as the routes read it (404 for no such path)."""
        parts = [part for part in path.split("?", 1)[0].strip("/").split("/") if part]
        for kind in self._sub_paths:
            depth = kind.codoc_path.count("/") + 1
            if "/".join(parts[:depth]) == kind.codoc_path and len(parts) in (depth, depth + 1):
                key = parts[depth] if len(parts) > depth else None
                return Address(self.types[kind.fhir_type], (kind,), key, True, True)
        fhir_type = self._by_segment.get(parts[0]) if parts and len(parts) <= 2 else None
        if fhir_type is not None:
            key = parts[1] if len(parts) == 2 else None
            codoc = parts[0] == fhir_type.codoc_path
            return Address(fhir_type, tuple(fhir_type.kinds), key, codoc)
        raise NotFound(f"No FHIR endpoint at {path!r}")


def build_registry(settings: Settings, cursor_secret: str | None = None) -> Registry:
    """The registry; paging cursors use CODOC_CURSOR_KEY, else `cursor_secret` (the
    database's, shared by every worker), else a key of this process alone."""
    mapped = [make(settings) for make in RESOURCE_CLASSES]
    served = {kind.fhir_type for kind in mapped}
    stored = [generic_kind(name)(settings) for name in generic_type_names(served)]
    return Registry(
        [*mapped, *stored],
        max_search_values=settings.max_search_values,
        max_page_bytes=settings.max_page_bytes,
        cursor_secret=settings.cursor_key or cursor_secret,
    )
