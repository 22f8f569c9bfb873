"""Creates of facts in one autocommitted statement on the async pool (PostgreSQL), no HTTP.

The generic create (`Resource.create` through `Engined.run_write_trusting_keys`, in the
thread pool) sends BEGIN, the concept look-up, the INSERT returning the joined row, one
follow-up statement and COMMIT through synchronous SQLAlchemy: about 3 ms of a worker's CPU
for a Procedure, where the create floor (bench/floor.py) needs under 1 ms in all. For the
kinds whose new row can be told before it is written (the `dwh_data` kinds answered in one
row: `DataFactResource.new_row_images`), this module makes the same create on the event
loop in one statement:

- the same validation and mapping (`checked`, `to_values`), handed a connection that
  answers nothing (`Offline`): the look-ups a mapping makes are answered by this
  process's cache of what it has already read (the concept of a code; the department and
  unit names its rows join), references stored in a column with a foreign key are trusted
  to it (resources/lookups.py), and any other question hands the create on;
- the key from a block of the table's sequence this process reserved (the pooled
  allocation HAPI FHIR makes too): the new row, its kept elements, tokens and first
  version are rendered before the write exactly as `Resource.first_version` renders them
  after the generic INSERT;
- one statement writes the row (with its kept elements), its token rows and its history
  row, and re-checks inside it every cached answer the rendering used: the row is only
  inserted when the concept still has that code and label and the organisations those
  names. A stale cache writes nothing (and is forgotten whole); a missing patient or
  organisation is refused by the foreign keys and writes nothing.

Whatever this module does not write is handed on (`None`) to the generic create, which
answers it as it always has: a refusal of any kind (the body, a reference, a scope), a
question the cache cannot answer (a new code, a stay, a second performer), a value the
image cannot tell. A code seen for the first time is read here once and cached, so the next
create of it stays here; a code the thesaurus lacks is created by the generic create.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any, NamedTuple, cast

import psycopg
from sqlalchemy import Connection, Table

from codoc_fhir.fhir.dates import utc_now
from codoc_fhir.fhir.errors import FhirError
from codoc_fhir.resources import concepts, lookups
from codoc_fhir.resources.base import FirstVersion, Resource, RowImage, row_images
from codoc_fhir.resources.data_fact import ORG_COLUMNS, DataFactResource, join_names
from codoc_fhir.resources.fast_create_statements import (
    CHECK,
    CONCEPT_SQL,
    FIRST_VERSION_SQL,
    NEW,
    TOKEN,
    VERSION,
    CompiledWrite,
    keys_sql,
    name_sql,
    write_statement,
)
from codoc_fhir.resources.fast_read import (
    NO_CONNECTION,
    FastReader,
    ReadFailed,
    answers_in_one_row,
)
from codoc_fhir.resources.follow_ups import TOKEN_COLUMNS, VERSION_COLUMNS

LOOKUPS = 4  # questions one create may learn the answers to before it hands on
CACHE_LIMIT = 20_000  # cached answers per process; the cache starts again when full


class HandedOn(Exception):
    """The fast create does not write this one: the generic create answers it."""


class NeedsDatabase(HandedOn):
    """The mapping asked the database something (`statement` with `parameters`)."""

    def __init__(self, statement: Any = None, parameters: Any = None) -> None:
        super().__init__("the mapping asked the database")
        self.statement, self.parameters = statement, parameters


class Offline:
    """The connection a mapping is handed here: any question asked of it raises
    NeedsDatabase (a cached answer never reaches it: resources/lookups.py asks the cache
    first)."""

    def execute(self, statement: Any, parameters: Any = None) -> Any:
        raise NeedsDatabase(statement, parameters)

    def __getattr__(self, name: str) -> Any:
        raise NeedsDatabase(name)


OFFLINE = cast(Connection, Offline())


class ConceptRow(NamedTuple):
    """A concept as a fact's row joins it (the attributes `join_names` reads)."""

    thesaurus_data_num: int
    thesaurus_code: str
    concept_code: str
    concept_str: str


def creates_in_one_statement(kind: Resource) -> bool:
    """Whether a create of `kind` can be written here: a fact kind answered in one row whose
    new row `join_names` tells (no children, no answer that reads its kept elements)."""
    return (
        answers_in_one_row(kind)
        and type(kind).new_row_images is DataFactResource.new_row_images
        and type(kind).write_children is Resource.write_children
        and type(kind).first_version is Resource.first_version
        and not kind.answer_reads_kept
        and not kind.children_change_row
    )


Mapped = tuple[dict[str, Any], dict[str, Any], ConceptRow, dict[str, tuple[int, str]]]


@dataclass(frozen=True)
class Planned:
    """One create before its key: the checked body, its row's values, the cached answers
    its statement re-checks (the concept; the names by level) and its row's image with
    them joined (its key still to set)."""

    kind: Resource
    body: dict[str, Any]
    values: dict[str, Any]
    concept: ConceptRow
    names: dict[str, tuple[int, str]]
    image: RowImage


@dataclass(frozen=True)
class Keyed:
    """A create under its key: the row's values (key and kept elements in), its first
    version, and what it was planned from."""

    planned: Planned
    num: int
    values: dict[str, Any]
    first: FirstVersion


class FastCreator:
    """The look-up cache, the reserved keys and the statements of one process; the
    statements run on the fast reader's pool (resources/fast_read.py)."""

    def __init__(self, reader: FastReader) -> None:
        self.reader = reader
        self.known: dict[Hashable, Any] = {}  # lookups.py keys: concepts by code and number
        self.names: dict[tuple[str, int], str] = {}  # (level, number) -> name
        self.keys: dict[str, list[int]] = {}  # table -> reserved keys, next first
        self.written = 0  # creates written here (tests check the path was taken)

    async def create(self, kind: Resource, body: dict[str, Any]) -> dict[str, Any] | None:
        """The created resource, or None when the generic create is to answer (nothing
        was written then)."""
        if not creates_in_one_statement(kind):
            return None
        try:
            planned = self.plan(kind, *await self._mapped(kind, body))
            keyed = self.keyed(planned, await self._reserved_key(kind))
            await self._write(keyed)
        except HandedOn:
            return None
        self.written += 1
        return keyed.first.resource

    async def _mapped(self, kind: Resource, body: dict[str, Any]) -> Mapped:
        """`mapped` of the checked body, after reading what the cache lacks (a concept, a
        name: one query each, remembered): a few questions at most, the concept and the two
        names of a fact. The body is checked once, before any question."""
        try:
            checked = kind.checked(body)
        except FhirError as error:  # its answer, the element named, is the generic create's
            raise HandedOn(str(error)) from error
        for _ in range(LOOKUPS + 1):
            try:
                return self.mapped(kind, checked)
            except NeedsDatabase as asked:
                await self._learn(asked)
        raise HandedOn("the cache cannot answer the mapping")

    def mapped(self, kind: Resource, checked: dict[str, Any]) -> Mapped:
        """The checked body, its row's values, and the cached concept and names they name,
        from the cache alone (NeedsDatabase for a question it cannot answer)."""
        try:
            with lookups.batch(self.known), lookups.foreign_keys_trusted():
                values = kind.to_values(OFFLINE, checked, None)
        except FhirError as error:
            raise HandedOn(str(error)) from error
        concept = self.known.get(("concept row", values.get("thesaurus_data_num")))
        if concept is None:
            raise HandedOn("a concept number the cache did not give")
        return checked, values, concept, self._names_of(values)

    def plan(
        self,
        kind: Resource,
        checked: dict[str, Any],
        values: dict[str, Any],
        concept: ConceptRow,
        names: dict[str, tuple[int, str]],
    ) -> Planned:
        """The create and the image of its row, keyed later (`keyed`): HandedOn when the
        image cannot tell its row."""
        values = values | {"update_date": utc_now(), "row_version": 1}
        images = row_images(kind.table, kind.key, [0], [values])
        if images is None:
            raise HandedOn("a value whose stored form the image cannot tell")
        held = {(level, num): name for level, (num, name) in names.items()}
        join_names(images, {concept.thesaurus_data_num: concept}, held)
        return Planned(kind, checked, values, concept, names, images[0])

    def keyed(self, planned: Planned, num: int) -> Keyed:
        """The create rendered under its key, as `Resource.first_version` renders the row
        the generic create reads back."""
        kind = planned.kind
        image = planned.image | {kind.key.name: num}
        related = kind.load_related(NO_CONNECTION, [image])
        first = kind.first_version(num, planned.body, image, related)
        values = planned.values | {"fhir_kept": first.kept_json, kind.key.name: num}
        return Keyed(planned, num, values, first)

    def _names_of(self, values: dict[str, Any]) -> dict[str, tuple[int, str]]:
        """The cached name of each organisation the row's columns name (NeedsDatabase for
        one the cache lacks)."""
        names = {}
        for level in ORG_COLUMNS:
            num = values.get(f"{level}_num")
            if num is None:
                continue
            name = self.names.get((level, num))
            if name is None:
                raise NeedsDatabase(("names", level), num)
            names[level] = (num, name)
        return names

    async def _learn(self, asked: NeedsDatabase) -> None:
        """Read and cache the answer to the question the mapping asked; HandedOn for a
        question this cache does not hold, or one whose answer is "none" (a new code, an
        organisation that does not exist: the generic create creates, or refuses)."""
        if len(self.known) + len(self.names) > CACHE_LIMIT:
            self.known.clear()
            self.names.clear()
        if asked.statement is concepts.CONCEPT_QUERY:
            await self._learn_concept(asked.parameters["thesaurus"], asked.parameters["code"])
        elif isinstance(asked.statement, tuple) and asked.statement[0] == "names":
            await self._learn_name(asked.statement[1], asked.parameters)
        else:
            raise HandedOn("a look-up the cache does not hold")

    async def _learn_concept(self, thesaurus: str, code: str) -> None:
        row = await self._ask(CONCEPT_SQL, {"thesaurus": thesaurus, "code": code})
        if row is None:
            raise HandedOn("a code the thesaurus lacks")
        concept = ConceptRow(**row)
        self.known[("concept", thesaurus, code)] = concept.thesaurus_data_num
        self.known[("concept row", concept.thesaurus_data_num)] = concept

    async def _learn_name(self, level_name: str, num: int) -> None:
        row = await self._ask(name_sql(level_name), {"num": num})
        if row is None:
            raise HandedOn("an organisation that does not exist")
        self.names[(level_name, num)] = row["name"]

    def forget(self) -> None:
        """Drop every cached answer and reserved key: a statement found one stale, so the
        warehouse changed under this process (a rename, a TRUNCATE). Starting again costs a
        question per answer; keeping the others could burn a fresh block of keys on each
        stale one that follows."""
        self.known.clear()
        self.names.clear()
        self.keys.clear()

    async def _reserved_key(self, kind: Resource) -> int:
        reserved = self.keys.setdefault(kind.table.name, [])
        if not reserved:
            rows = await self._ask(keys_sql(kind.table, kind.key), {}, many=True)
            reserved.extend(sorted(int(row["num"]) for row in rows))
        return reserved.pop(0)

    async def _write(self, keyed: Keyed) -> None:
        """The one statement; HandedOn when it wrote nothing (a refusal, a stale cache).

        The reader retries a statement once on a connection found dead. A retry that meets
        its own key already taken (the first attempt committed, its answer lost) is written
        when the stored first version is the one planned."""
        planned, table = keyed.planned, keyed.planned.kind.table
        compiled = write_statement(
            table,
            tuple(sorted(keyed.values)),
            tuple(sorted(planned.names)),
            bool(keyed.first.tokens),
        )
        try:
            written = await self.reader.ask(
                compiled.sql, compiled.parameters(_parameters(keyed)), many=False
            )
        except ReadFailed as failed:
            if not _key_taken(failed.__cause__, table):
                raise HandedOn(str(failed)) from failed
            if await self._stored_version(keyed) != keyed.first.version["resource_json"]:
                self.keys.pop(table.name, None)  # the sequence went back
                raise HandedOn("the reserved key is another row's") from failed
            return
        if written is None:  # which re-check failed is not told: all are started again
            self.forget()
            raise HandedOn("a cached answer or the reserved keys found stale")

    async def _stored_version(self, keyed: Keyed) -> str | None:
        version = keyed.first.version
        parameters = {"fhir_type": version["fhir_type"], "fhir_id": version["fhir_id"]}
        row = await self._ask(FIRST_VERSION_SQL, parameters)
        return None if row is None else row["resource_json"]

    async def _ask(
        self, compiled: CompiledWrite, parameters: dict[str, Any], *, many: bool = False
    ) -> Any:
        try:
            return await self.reader.ask(compiled.sql, compiled.parameters(parameters), many=many)
        except ReadFailed as failed:  # the generic create answers (503 when it cannot either)
            raise HandedOn(str(failed)) from failed


def _key_taken(error: BaseException | None, table: Table) -> bool:
    """Whether `error` is the refusal of a row whose primary key is already taken."""
    if not isinstance(error, psycopg.errors.UniqueViolation):
        return False
    # the schema's name for it, or PostgreSQL's default (a database made by other tools)
    return error.diag.constraint_name in (table.primary_key.name, f"{table.name}_pkey")


def _parameters(keyed: Keyed) -> dict[str, Any]:
    """The statement's parameters: the row, the re-checked answers, the first version,
    the token rows as arrays."""
    concept = keyed.planned.concept
    parameters = {f"{NEW}{name}": value for name, value in keyed.values.items()}
    parameters |= {
        f"{CHECK}concept_num": concept.thesaurus_data_num,
        f"{CHECK}concept_thesaurus": concept.thesaurus_code,
        f"{CHECK}concept_code": concept.concept_code,
        f"{CHECK}concept_str": concept.concept_str,
    }
    for level, (num, name) in keyed.planned.names.items():
        parameters |= {f"{CHECK}{level}_num": num, f"{CHECK}{level}_name": name}
    version = keyed.first.version
    parameters |= {f"{VERSION}{name}": version[name] for name in VERSION_COLUMNS}
    tokens = keyed.first.tokens
    for name in TOKEN_COLUMNS if tokens else ():
        parameters[f"{TOKEN}{name}"] = [token[name] for token in tokens]
    return parameters
