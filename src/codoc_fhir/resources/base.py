"""The base every resource mapping extends, and the generic interactions it gets.

A `Resource` is one FHIR resource kind backed by one warehouse table (Encounter has two:
stays and movements; Observation three). Subclasses declare their table and write two pure
mappings plus the checks that need the database:

- `to_fhir(row, related)`: a warehouse row (and batch-loaded related data) -> FHIR dict;
- `to_values(conn, body, current)`: a validated FHIR body -> column values for the table,
  raising FhirError on contract violations and missing references.

Everything else (create, read, update, patch, delete, meta, ETag, If-Match, delete
blocking) is generic, here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, ClassVar

import orjson
from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    DateTime,
    Float,
    FromClause,
    Integer,
    String,
    Table,
    Text,
    any_,
    bindparam,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.sql.util import ClauseAdapter

from codoc_fhir.fhir.dates import format_instant, utc_now
from codoc_fhir.fhir.errors import Conflict, Invalid, NotFound, PreconditionFailed, names_elements
from codoc_fhir.fhir.json_types import TypesChecked
from codoc_fhir.fhir.kept import kept_codings, kept_elements, with_kept
from codoc_fhir.fhir.patching import apply_json_patch, merge_patch
from codoc_fhir.fhir.references import key_number
from codoc_fhir.fhir.validation import validate_resource
from codoc_fhir.resources import lookups
from codoc_fhir.resources.follow_ups import write_follow_ups
from codoc_fhir.resources.history import (
    check_not_deleted,
    record_deletion,
    record_version,
    record_versions,
    version_values,
)
from codoc_fhir.search.kind import SearchParam
from codoc_fhir.warehouse.copy import insert_many, sequence_of
from codoc_fhir.warehouse.schema import TOKEN_LENGTH, fhir_token

# A new row as `row_images` tells it before it is written: a dict of what a read of the row
# gives (`base_query`'s columns), which the renderings take where they take a RowMapping.
RowImage = Any


@dataclass(frozen=True)
class FirstVersion:
    """A new resource as answered, and the writes that follow its row: the kept elements'
    JSON (None: nothing kept), its token rows, its history row."""

    resource: dict[str, Any]
    kept_json: str | None
    tokens: list[dict[str, Any]]
    version: dict[str, Any]


@dataclass(frozen=True)
class Referrer:
    """Rows of `table` whose `column` points at a resource; they block its deletion.

    `label` names them in the 409 message; with `group_by`, rows are counted per value of
    that column and `label` maps the value to a name (dwh_data rows per thesaurus).
    """

    table: Table
    column: str
    label: str | Callable[[Any], str]
    group_by: str | None = None
    where: Callable[[Table], Any] | None = None


class Resource:
    """One FHIR resource kind over one warehouse table."""

    fhir_type: ClassVar[str]
    label: ClassVar[str]  # the warehouse name used in messages ("Stay", "Patient")
    table: ClassVar[Table]
    codoc_path: ClassVar[str]  # Codoc path segment(s): "procedure", "encounter/movement"
    id_prefix: ClassVar[str] = ""  # FHIR id = id_prefix + primary key
    interactions: ClassVar[tuple[str, ...]] = (
        "read",
        "create",
        "update",
        "patch",
        "delete",
        "search-type",
        "vread",
        "history-instance",
        "history-type",
    )
    search_params: ClassVar[dict[str, SearchParam]] = {}
    # The column naming the patient a row belongs to (patient-scoped tokens); None: no patient.
    patient_column_name: ClassVar[str | None] = "patient_num"
    # Whether elements no column holds are kept with the row (fhir/kept.py). Off for kinds
    # whose answer other interactions also change (CodeSystem concepts have their own
    # operations: a kept copy would bring back what those removed) and for kinds that
    # store the whole resource anyway (the other R4B types, resources/generic).
    keeps_elements: ClassVar[bool] = True
    # Whether `to_fhir` looks at the kept elements to choose a form (a phenotype sent with
    # another value[x] than valueString): then a write renders again once they are stored.
    answer_reads_kept: ClassVar[bool] = False
    # Whether a bulk import may create this kind in batches (create_many): only kinds whose
    # checks of one body never depend on another body of the same batch, or that say so
    # in check_batch (Patient identifiers). Off by default: Encounter, Organization and
    # CodeSystem check uniqueness by a read before their insert.
    batch_creates: ClassVar[bool] = False
    # Whether `write_children` changes the kind's own row (movements renumber their stay's
    # mvt_order): then a create reads the row after them instead of taking it from the
    # INSERT (insert_answered).
    children_change_row: ClassVar[bool] = False

    # --- identity ----------------------------------------------------------------------

    @property
    def key(self) -> Column:
        return next(iter(self.table.primary_key.columns))

    def fhir_id(self, num: int) -> str:
        return f"{self.id_prefix}{num}"

    def parse_fhir_id(self, ident: str) -> int | None:
        """The primary key inside a FHIR id of this kind, or None if it is not one."""
        if self.id_prefix:
            if not ident.startswith(self.id_prefix):
                return None
            ident = ident[len(self.id_prefix) :]
        return key_number(ident)

    def patient_column(self) -> Column | None:
        """The column holding the patient_num of a row, or None for patient-less kinds."""
        name = self.patient_column_name
        return self.table.c[name] if name and name in self.table.c else None

    def accepts_create(self, body: dict[str, Any]) -> bool:
        """Whether a POST on the FHIR type path with this body creates this kind."""
        return True

    # --- what subclasses write ---------------------------------------------------------

    def scope(self) -> Any:
        """An extra WHERE clause restricting the table to this kind's rows (or None)."""
        return None

    def to_fhir(self, row: RowMapping, related: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def to_values(
        self, conn: Connection, body: dict[str, Any], current: RowMapping | None
    ) -> dict[str, Any]:
        raise NotImplementedError

    def load_related(self, conn: Connection, rows: Sequence[RowMapping]) -> dict[str, Any]:
        """Data from other tables the rows need, loaded in a few queries (no N+1)."""
        return {}

    def write_children(self, conn: Connection, num: int, body: dict[str, Any]) -> None:
        """Write rows of child tables after the main row (e.g. Patient identifiers)."""

    def validate(self, body: Any) -> dict[str, Any]:
        """The FHIR R4B model check; subclasses add the contract's own checks."""
        return validate_resource(body, self.fhir_type)

    def checked(self, body: Any) -> dict[str, Any]:
        """`validate`, after the JSON types: a kind's own checks, which may run before the
        model check, then meet the shapes FHIR defines (arrays, objects, strings)."""
        with TypesChecked(body, self.fhir_type):
            return self.validate(body)

    def referrers(self) -> Sequence[Referrer]:
        return ()

    def before_delete(self, conn: Connection, num: int) -> None:
        """Delete child rows owned by this resource (after the referrer check)."""

    # --- generic reads -----------------------------------------------------------------

    def base_query(self, source: FromClause | None = None) -> Any:
        """The query of this kind's rows, as `to_fhir` reads them; over `source` (a CTE of
        the table's columns, `insert_answered`) in place of the table when given."""
        rows = self.table if source is None else source
        query = select(rows)
        scope = self.scope()
        if scope is not None and source is not None:
            scope = ClauseAdapter(source).traverse(scope)
        return query.where(scope) if scope is not None else query

    def fetch_row(self, conn: Connection, num: int) -> RowMapping:
        row = conn.execute(self.base_query().where(self.key == num)).mappings().first()
        if row is None:
            check_not_deleted(conn, self, num)  # 410 once deleted
            raise NotFound(f"{self.fhir_type} with ID {self.fhir_id(num)} does not exist")
        return row

    def render(self, rows: Sequence[RowMapping], related: dict[str, Any]) -> list[dict]:
        return list(self.rendered(rows, related))

    def rendered(self, rows: Sequence[RowMapping], related: dict[str, Any]) -> Iterator[dict]:
        """The rows' resources one at a time, each built when asked for: a consumer that
        serialises each before taking the next (the $export writer) never holds a chunk's
        worth of dicts, which would outlive the collector's young generation."""
        for row in rows:
            yield self.with_meta(with_kept(self.to_fhir(row, related), _kept_of(row)), row)

    def with_meta(self, resource: dict[str, Any], row: RowMapping) -> dict[str, Any]:
        meta = {
            "versionId": str(row["row_version"]),
            "lastUpdated": format_instant(row["update_date"]),
        }
        resource["meta"] = meta
        return resource

    def read(self, conn: Connection, num: int) -> dict[str, Any]:
        row = self.fetch_row(conn, num)
        return self.render([row], self.load_related(conn, [row]))[0]

    def read_many(self, conn: Connection, rows: Sequence[RowMapping]) -> list[dict[str, Any]]:
        return self.render(rows, self.load_related(conn, rows)) if rows else []

    def read_each(self, conn: Connection, rows: Sequence[RowMapping]) -> Iterator[dict[str, Any]]:
        """`read_many`, one resource at a time (`rendered`)."""
        return self.rendered(rows, self.load_related(conn, rows) if rows else {})

    # --- generic writes ----------------------------------------------------------------

    @names_elements  # `subject` in a check's error becomes `Procedure.subject`
    def create(self, conn: Connection, body: Any, *, read_back: bool = True) -> dict[str, Any]:
        """Insert the resource and keep its first version; the stored resource, or only its
        type and id when not `read_back` (bulk import: a smaller answer to hold)."""
        body = self.checked(body)
        values = self.to_values(conn, body, None)
        values.update(update_date=utc_now(), row_version=1)
        with _conflicts_as_409():
            num, row = self.insert_answered(conn, values)
            self.write_children(conn, num, body)
        if row is not None and not self.answer_reads_kept:
            resource = self.created_answer(conn, num, body, row)
        else:
            resource, row = self.kept_answer(conn, num, body, row, created=True)
            record_version(conn, self, num, "POST", resource, patient=self.patient_of(row))
        if not read_back:
            return {"resourceType": self.fhir_type, "id": self.fhir_id(num)}
        return resource

    @names_elements
    def create_many(self, conn: Connection, bodies: Sequence[Any]) -> list[dict[str, Any]]:
        """Create every body as `create` would, with the statements of the batch grouped:
        the same checks and mapping per body (look-ups cached, resources/lookups.py), then
        one multi-row INSERT per table (main rows, kept elements, tokens, history). The
        stored resources, in order, as `create` answers them. The first refusal raises and
        leaves the batch half done: call it in a savepoint, and on an error go one body at a
        time to learn which one failed (the importer does).

        Where the kind can tell its new rows from the values about to be written
        (`new_row_images`), the resources are rendered from those before the INSERT, so that
        the main rows carry their kept elements (PostgreSQL: the keys come from the sequence
        first): no read back, no UPDATE of each new row. Otherwise the rows are written, read
        back and their kept elements stored after them (`keep_many`)."""
        with lookups.batch():  # until the images: they reuse what the prefetch read
            checked = [self.checked(body) for body in bodies]
            self.check_batch(checked)
            self.prefetch(conn, checked)
            rows = [self.to_values(conn, body, None) for body in checked]
            now = utc_now()
            for values in rows:
                values.update(update_date=now, row_version=1)
            reserved = reserve_keys(conn, self.table, self.key, len(rows))
            with _conflicts_as_409():
                nums = reserved or insert_rows(conn, self.table, self.key, rows)
                images = self.new_row_images(conn, nums, rows, checked)
                if images is None:
                    if reserved:
                        insert_keyed(conn, self.table, self.key, nums, rows)
                    self.write_children_many(conn, nums, checked)
        if images is None:
            resources = self.keep_many(conn, nums, checked)
            record_versions(conn, self, nums, "POST", resources, now)
            return resources
        resources = self.keep_new(conn, nums, rows, checked, images, written=not reserved)
        patients = {num: self.patient_of(image) for num, image in zip(nums, images[0], strict=True)}
        record_versions(conn, self, nums, "POST", resources, now, patients=patients)
        return resources

    def new_row_images(
        self,
        conn: Connection,
        nums: Sequence[int],
        rows: Sequence[dict[str, Any]],
        bodies: Sequence[dict[str, Any]],
    ) -> tuple[list[RowImage], dict[str, Any]] | None:
        """The new rows `nums` (to be written with the values `rows`, mapped from `bodies`)
        as `base_query` will read them, and their `load_related` data, told without reading
        them back; None when the kind cannot tell them (the default: its answer needs what
        only the written rows hold). A kind that answers this must give exactly what the read
        of the written row gives: tests/resources/test_create_many.py compares them."""
        return None

    def keep_new(
        self,
        conn: Connection,
        nums: Sequence[int],
        rows: Sequence[dict[str, Any]],
        bodies: Sequence[dict[str, Any]],
        images: tuple[list[RowImage], dict[str, Any]],
        *,
        written: bool,
    ) -> list[dict[str, Any]]:
        """`keep_many` for rows told by `new_row_images`: the resources rendered from the
        images; the kept elements go into the rows' own values, which are then written
        (or, the rows `written` already, into one UPDATE of the rows that keep something),
        the children and the token rows after them."""
        found, related = images
        answered = [self.to_fhir(image, related) for image in found]
        kept: list[dict[str, Any] | None] = [None] * len(nums)
        if self.keeps_elements:
            kept = [
                kept_elements(self.kept_source(body), answer)
                for body, answer in zip(bodies, answered, strict=True)
            ]
            stored = [orjson.dumps(item).decode() if item else None for item in kept]
            for values, image, text in zip(rows, found, stored, strict=True):
                values["fhir_kept"] = image["fhir_kept"] = text
        with _conflicts_as_409():
            if not written:
                insert_keyed(conn, self.table, self.key, nums, rows)
            elif self.keeps_elements:
                changed = {num: values["fhir_kept"] for num, values in zip(nums, rows, strict=True)}
                changed = {num: text for num, text in changed.items() if text is not None}
                if changed:
                    self.store_kept(conn, changed)
            self.write_children_many(conn, nums, bodies)
        pairs = zip(nums, kept, strict=True)
        tokens = [row for num, item in pairs for row in self.token_rows(num, item)]
        insert_many(conn, fhir_token, tokens)
        return [
            self.with_meta(with_kept(answer, item), image)
            for answer, item, image in zip(answered, kept, found, strict=True)
        ]

    def check_batch(self, bodies: Sequence[dict[str, Any]]) -> None:
        """Refuse a batch whose bodies would have checked each other one at a time (two
        Patients with one identifier: the second one's check sees the first one's row):
        raise, so that the caller goes one body at a time. Nothing to check by default."""

    def prefetch(self, conn: Connection, bodies: Sequence[dict[str, Any]]) -> None:
        """Load in a few queries what the mapping of the batch will look up one body at a
        time (lookups.remember); nothing by default: the look-ups are then cached only."""

    def write_children_many(
        self, conn: Connection, nums: Sequence[int], bodies: Sequence[dict[str, Any]]
    ) -> None:
        """`write_children` for a batch of new rows; one at a time by default."""
        for num, body in zip(nums, bodies, strict=True):
            self.write_children(conn, num, body)

    def keep_many(
        self, conn: Connection, nums: Sequence[int], bodies: Sequence[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """`keep` for freshly created rows, in a few statements for the whole batch."""
        found = self.fetch_rows(conn, nums)
        related = self.load_related(conn, list(found.values()))
        answered = {num: self.to_fhir(found[num], related) for num in nums}
        if not self.keeps_elements:
            return [self.with_meta(answered[num], found[num]) for num in nums]
        kept = {
            num: kept_elements(self.kept_source(body), answered[num])
            for num, body in zip(nums, bodies, strict=True)
        }
        stored = {num: orjson.dumps(kept[num]).decode() if kept[num] else None for num in nums}
        changed = [num for num in nums if stored[num] != found[num]["fhir_kept"]]
        if changed:
            self.store_kept(conn, {num: stored[num] for num in changed})
            if self.answer_reads_kept:
                found.update(self.fetch_rows(conn, changed))
                related = self.load_related(conn, list(found.values()))
                answered.update({num: self.to_fhir(found[num], related) for num in changed})
        tokens = [row for num in nums for row in self.token_rows(num, kept[num])]
        insert_many(conn, fhir_token, tokens)
        return [self.with_meta(with_kept(answered[num], kept[num]), found[num]) for num in nums]

    def store_kept(self, conn: Connection, kept_json: dict[int, str | None]) -> None:
        """Write the kept elements of new rows (their number -> JSON): on PostgreSQL one
        UPDATE joining the arrays of numbers and values, where an executemany is one
        UPDATE statement per row to plan and execute. The `key = ANY(numbers)` condition
        is what makes the planner fetch the rows by their index: with the join alone it
        hashes the whole table, a cost that grows with every batch imported."""
        if conn.dialect.name == "postgresql":
            nums = bindparam("kept_nums", list(kept_json), type_=ARRAY(self.key.type))
            values = bindparam("kept_jsons", list(kept_json.values()), type_=ARRAY(Text()))
            pairs = func.unnest(nums, values).table_valued("num", "kept").render_derived()
            statement = (
                self.table.update()
                .where(self.key == any_(nums), self.key == pairs.c.num)
                .values(fhir_kept=pairs.c.kept)
            )
            conn.execute(statement)
            return
        params = [{"kept_num": num, "kept_json": value} for num, value in kept_json.items()]
        conn.execute(kept_update(self.table), params)

    def fetch_rows(self, conn: Connection, nums: Sequence[int]) -> dict[int, RowMapping]:
        """The rows of `nums` (a missing one is left out), in one query."""
        query = self.base_query().where(lookups.among(conn, self.key, nums))
        return {row[self.key.name]: row for row in conn.execute(query).mappings()}

    def insert_answered(
        self, conn: Connection, values: dict[str, Any]
    ) -> tuple[int, RowMapping | None]:
        """INSERT the row; its key, and on PostgreSQL the row as `base_query` reads it.

        The row comes back from the INSERT itself (`WITH created AS (INSERT ... RETURNING
        *) SELECT ... FROM created JOIN ...`): one statement instead of an INSERT and a
        SELECT of the new row, a round trip and a statement execution less per create
        (docs/PERFORMANCE.md, create). Not for kinds whose `write_children` changes the row
        (`children_change_row`), nor on SQLite (no INSERT inside a WITH): None, `keep`
        reads it after the children."""
        plain = not any(isinstance(value, ClauseElement) for value in values.values())
        if conn.dialect.name != "postgresql" or self.children_change_row or not plain:
            insert = self.table.insert().values(**values)
            return conn.execute(insert.returning(self.key)).scalar_one(), None
        statement = _answered_insert(self, tuple(values))
        parameters = {f"{INSERT_PREFIX}{name}": value for name, value in values.items()}
        row = conn.execute(statement, parameters).mappings().first()
        if row is None:  # outside this kind's scope: the read answers 404 as before
            raise NotFound(f"The new {self.fhir_type} is not one of this kind's rows")
        return row[self.key.name], row

    def patient_of(self, row: RowMapping) -> int | None:
        """The patient of a row read with `base_query` (None for kinds without one)."""
        column = self.patient_column()
        return None if column is None else row[column.name]

    def keep(
        self, conn: Connection, num: int, body: dict[str, Any], *, created: bool = False
    ) -> dict[str, Any]:
        """Keep what of `body` the written row does not give back (fhir/kept.py), index its
        codes for token search, and return the resource as every later read answers it."""
        return self.kept_answer(conn, num, body, None, created=created)[0]

    def kept_answer(
        self,
        conn: Connection,
        num: int,
        body: dict[str, Any],
        row: RowMapping | None,
        *,
        created: bool = False,
    ) -> tuple[dict[str, Any], RowMapping]:
        """`keep`, from the row already read (`insert_answered`) when given; the resource
        and the row it was rendered from."""
        row = self.fetch_row(conn, num) if row is None else row
        answered = self.to_fhir(row, self.load_related(conn, [row]))
        if not self.keeps_elements:
            return self.with_meta(answered, row), row
        kept = kept_elements(self.kept_source(body), answered)
        stored = orjson.dumps(kept).decode() if kept else None
        if stored != row["fhir_kept"]:
            conn.execute(kept_update(self.table), {"kept_num": num, "kept_json": stored})
            if self.answer_reads_kept:
                row = self.fetch_row(conn, num)
                answered = self.to_fhir(row, self.load_related(conn, [row]))
        self.index_codes(conn, num, kept, created=created)
        return self.with_meta(with_kept(answered, kept), row), row

    def created_answer(
        self, conn: Connection, num: int, body: dict[str, Any], row: RowMapping
    ) -> dict[str, Any]:
        """`kept_answer` then `record_version` for a create whose row came back from its
        INSERT, their writes in one statement (resources/follow_ups.py)."""
        first = self.first_version(num, body, row, self.load_related(conn, [row]))
        stored = first.kept_json
        kept_json = (stored,) if self.keeps_elements and stored != row["fhir_kept"] else None
        write_follow_ups(conn, self.table, num, kept_json, first.tokens, first.version)
        return first.resource

    def first_version(
        self, num: int, body: dict[str, Any], row: RowMapping, related: dict[str, Any]
    ) -> FirstVersion:
        """What a create of `body` stores besides its row, told from the new row `num` (as
        read back, or its image) alone: no query, so that the fast create (resources/
        fast_create.py) writes exactly what the generic create writes."""
        answered = self.to_fhir(row, related)
        stored: str | None = None
        tokens: list[dict[str, Any]] = []
        if self.keeps_elements:
            kept = kept_elements(self.kept_source(body), answered)
            stored = orjson.dumps(kept).decode() if kept else None
            tokens = self.token_rows(num, kept)
            answered = with_kept(answered, kept)
        resource = self.with_meta(answered, row)
        version = version_values(
            self,
            num,
            self.patient_of(row),
            row["row_version"],
            "POST",
            orjson.dumps(resource).decode(),
        )
        return FirstVersion(resource, stored, tokens, version)

    def kept_source(self, body: dict[str, Any]) -> dict[str, Any]:
        """The body as the kept elements see it: a kind whose columns take part of a list
        in a canonical form of its own (phenotype components) puts that form in place of
        what it read, so that only the rest of the list is kept as sent."""
        return body

    def index_codes(
        self, conn: Connection, num: int, kept: dict[str, Any] | None, *, created: bool = False
    ) -> None:
        """The fhir_token rows of a resource: the codings and identifiers of its kept
        elements (codes longer than a token column stay searchable only by their column)."""
        if not created:
            self.drop_codes(conn, num)
        rows = self.token_rows(num, kept)
        if rows:
            conn.execute(fhir_token.insert(), rows)

    def token_rows(self, num: int, kept: dict[str, Any] | None) -> list[dict[str, Any]]:
        return [
            {"table_name": self.table.name, "row_num": num, "element": element}
            | {"system": system, "code": code}
            for element, system, code in kept_codings(kept)
            if len(code) <= TOKEN_LENGTH and len(system or "") <= TOKEN_LENGTH
        ]

    def drop_codes(self, conn: Connection, num: int) -> None:
        conn.execute(
            fhir_token.delete().where(
                fhir_token.c.table_name == self.table.name, fhir_token.c.row_num == num
            )
        )

    def lock_row(self, conn: Connection, num: int) -> RowMapping:
        """The row, locked until the transaction ends: concurrent writers of one resource
        queue here and each sees the previous one's commit (PostgreSQL `FOR UPDATE`;
        SQLite write transactions already run one at a time, see warehouse.db)."""
        query = self.base_query().where(self.key == num).with_for_update(of=self.table)
        row = conn.execute(query).mappings().first()
        if row is None:
            check_not_deleted(conn, self, num)  # 410 once deleted
            raise NotFound(f"{self.fhir_type} with ID {self.fhir_id(num)} does not exist")
        return row

    @names_elements
    def update(
        self,
        conn: Connection,
        num: int,
        body: Any,
        if_match: str | None = None,
        *,
        method: str = "PUT",
    ) -> dict[str, Any]:
        current = self.lock_row(conn, num)
        check_if_match(if_match, current["row_version"])
        return self.replace(conn, num, body, current, method=method)

    def replace(
        self, conn: Connection, num: int, body: Any, current: RowMapping, *, method: str = "PUT"
    ) -> dict[str, Any]:
        """Write `body` over the locked row `current` as its next version (kept in the
        history with `method`)."""
        body = self.checked(body)
        if body.get("id") is not None and str(body["id"]) != self.fhir_id(num):
            raise Invalid(
                f"The id in the body ({body['id']}) differs from the URL ({self.fhir_id(num)})",
                expression=["id"],
            )
        values = self.to_values(conn, body, current)
        self.write_next_version(conn, num, current["row_version"], values)
        with _conflicts_as_409():
            self.write_children(conn, num, body)
        resource, row = self.kept_answer(conn, num, body, None)
        record_version(conn, self, num, method, resource, patient=self.patient_of(row))
        return resource

    def write_next_version(
        self, conn: Connection, num: int, version: int, values: dict[str, Any]
    ) -> None:
        """The one place a stored row gets a new version: compare-and-set in the UPDATE
        itself, so a write can only ever replace the version it was computed from."""
        values.update(update_date=utc_now(), row_version=version + 1)
        statement = (
            self.table.update()
            .where(self.key == num, self.table.c.row_version == version)
            .values(**values)
        )
        with _conflicts_as_409():
            changed = conn.execute(statement).rowcount
        if changed != 1:
            raise PreconditionFailed(
                f"{self.fhir_type} {self.fhir_id(num)} changed while it was being updated "
                f"(version {version} is no longer current): nothing was written"
            )

    @names_elements
    def patch(
        self,
        conn: Connection,
        num: int,
        changes: Any,
        if_match: str | None = None,
        *,
        json_patch: bool = False,
    ) -> dict[str, Any]:
        current = self.lock_row(conn, num)
        check_if_match(if_match, current["row_version"])
        stored = self.render([current], self.load_related(conn, [current]))[0]
        if json_patch:
            merged = apply_json_patch(stored, changes)
        else:
            merged = merge_patch(stored, changes, self.fhir_type, self.fhir_id(num))
        merged.pop("meta", None)
        return self.replace(conn, num, merged, current, method="PATCH")

    def delete(self, conn: Connection, num: int, if_match: str | None = None) -> None:
        current = self.lock_row(conn, num)
        check_if_match(if_match, current["row_version"])
        blockers = count_referrers(conn, self.referrers(), num)
        if blockers:
            raise Conflict(f"{self.label} {self.fhir_id(num)} is referenced by {blockers}")
        self.before_delete(conn, num)
        statement = self.table.delete().where(
            self.key == num, self.table.c.row_version == current["row_version"]
        )
        with _conflicts_as_409():
            conn.execute(statement)
        if self.keeps_elements:
            self.drop_codes(conn, num)
        record_deletion(conn, self, current)


INSERT_PREFIX = "new_"  # the parameters of _answered_insert: apart from base_query's own


@cache
def _answered_insert(kind: Resource, names: tuple[str, ...]) -> Any:
    """`insert_answered`'s statement for rows of these columns, built once per kind and
    column set (the values come as parameters): building the CTE's proxies of every column
    and the join around it cost about a millisecond a create, more than running it."""
    table = kind.table
    placeholders = {
        name: bindparam(f"{INSERT_PREFIX}{name}", type_=table.c[name].type) for name in names
    }
    created = table.insert().values(placeholders).returning(*table.c).cte("created")
    return kind.base_query(created)


@cache
def kept_update(table: Table) -> Any:
    """`UPDATE table SET fhir_kept = :kept_json WHERE key = :kept_num`, built once per
    table: most writes keep something, and a statement built per write cost more to build
    than to run (docs/PERFORMANCE.md, create)."""
    key = next(iter(table.primary_key.columns))
    return (
        table.update().where(key == bindparam("kept_num")).values(fhir_kept=bindparam("kept_json"))
    )


def insert_rows(
    conn: Connection, table: Table, key: Column, rows: Sequence[dict[str, Any]]
) -> list[int]:
    """INSERT the rows, in as few statements as their sets of columns allow (a multi-row
    INSERT ... RETURNING each, SQLAlchemy's "insertmanyvalues"); their keys in order."""
    reserved = reserve_keys(conn, table, key, len(rows))
    if reserved is not None:
        insert_keyed(conn, table, key, reserved, rows)
        return reserved
    groups: dict[tuple[str, ...], list[int]] = {}
    for position, values in enumerate(rows):
        groups.setdefault(tuple(sorted(values)), []).append(position)
    nums: list[int] = [0] * len(rows)
    statement = table.insert().returning(key, sort_by_parameter_order=True)
    for positions in groups.values():
        result = conn.execute(statement, [rows[position] for position in positions])
        for position, num in zip(positions, result.scalars(), strict=True):
            nums[position] = num
    return nums


def reserve_keys(conn: Connection, table: Table, key: Column, count: int) -> list[int] | None:
    """PostgreSQL: the keys of `count` new rows, from the table's sequence in one query
    (ascending, as one INSERT after another would take them); None where the INSERT itself
    assigns them (SQLite) or the key is not generated."""
    if conn.dialect.name != "postgresql" or key.autoincrement is False or not count:
        return None
    sequence = select(func.nextval(sequence_of(table, key)))
    keys = conn.execute(sequence.select_from(func.generate_series(1, count))).scalars()
    return sorted(int(num) for num in keys)


def insert_keyed(
    conn: Connection,
    table: Table,
    key: Column,
    nums: Sequence[int],
    rows: Sequence[dict[str, Any]],
) -> None:
    """Write the rows under the keys `reserve_keys` gave: one COPY (warehouse/copy.py) per
    set of columns, where a 500-row VALUES list is a new long statement to parse for each
    batch."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for num, values in zip(nums, rows, strict=True):
        groups.setdefault(tuple(sorted(values)), []).append(values | {key.name: num})
    for group in groups.values():
        insert_many(conn, table, group)


# What a new row's value must be for `row_images` to stand for the row read back, by the
# class of its column's type (the first that matches): anything else (an SQL expression, a
# string in a number column, a naive timestamp) is left to the database, and the batch
# reads its rows back. A number in a Float column reads back as a float.
IMAGE_KINDS: tuple[tuple[type, str], ...] = (
    (Boolean, "bool"),
    (DateTime, "timestamp"),
    (Float, "float"),
    (Integer, "int"),
    (String, "str"),
)


@cache
def _image_kinds(table: Table) -> dict[str, str | None]:
    return {
        column.name: next(
            (name for kind, name in IMAGE_KINDS if isinstance(column.type, kind)), None
        )
        for column in table.columns
    }


_PLAIN_TYPES = {"bool": (bool,), "float": (float, int), "int": (int,), "str": (str,)}


def _plain(kind: str | None, value: Any) -> bool:
    if kind == "timestamp":
        return isinstance(value, datetime) and value.tzinfo is not None
    return kind is not None and type(value) in _PLAIN_TYPES[kind]


def row_images(
    table: Table, key: Column, nums: Sequence[int], rows: Sequence[dict[str, Any]]
) -> list[RowImage] | None:
    """The table's columns of each new row as a read of it will give them: every column
    (None when not written), the key, the values; None when a value is not of the plain
    type its column reads back (IMAGE_KINDS). Timestamps are aware (the mappings write
    UTC), so the instant read back formats alike."""
    kinds = _image_kinds(table)
    blank = dict.fromkeys(kinds)
    images = []
    for num, values in zip(nums, rows, strict=True):
        image = blank | values
        for name, value in values.items():
            if value is None:
                continue
            kind = kinds.get(name)
            if not _plain(kind, value):
                return None
            if kind == "float":
                image[name] = float(value)
        image[key.name] = num
        images.append(image)
    return images


def _kept_of(row: RowMapping) -> dict[str, Any] | None:
    stored = row.get("fhir_kept")
    return orjson.loads(stored) if stored else None


def child_rows(
    conn: Connection, column: Column, nums: Sequence[int], *order: Any
) -> dict[int, list[Any]]:
    """The rows of `column`'s table that belong to each parent of `nums` (the parent's
    number -> its rows, in `order`), in one query: a page's children without N+1."""
    grouped: dict[int, list[Any]] = {num: [] for num in nums}
    table = column.table
    query = select(table).where(column.in_(nums)).order_by(column, *order)
    for child in conn.execute(query):
        grouped[getattr(child, column.name)].append(child)
    return grouped


def count_referrers(conn: Connection, referrers: Sequence[Referrer], num: int) -> str:
    """'2 Procedure, 1 DocumentReference' for the rows still pointing at `num` ('' if none)."""
    counts: dict[str, int] = {}
    for referrer in referrers:
        table = referrer.table
        condition = table.c[referrer.column] == num
        if referrer.where is not None:
            condition = condition & referrer.where(table)
        if referrer.group_by:
            group = table.c[referrer.group_by]
            query = select(group, func.count()).where(condition).group_by(group).order_by(group)
            for value, count in conn.execute(query):
                name = referrer.label(value) if callable(referrer.label) else referrer.label
                counts[name] = counts.get(name, 0) + count
        else:
            count = conn.execute(select(func.count()).where(condition)).scalar_one()
            if count:
                name = referrer.label if isinstance(referrer.label, str) else str(referrer.label)
                counts[name] = counts.get(name, 0) + count
    return ", ".join(f"{count} {name}" for name, count in counts.items() if count)


def check_if_match(if_match: str | None, version: int) -> None:
    """412 when an If-Match header names another version than the stored one."""
    if not if_match:
        return
    wanted = if_match.strip().removeprefix("W/").strip('"')
    if wanted != str(version):
        raise PreconditionFailed(
            f"Version conflict: If-Match asked for version {wanted}, the current one is {version}"
        )


@contextmanager
def _conflicts_as_409() -> Iterator[None]:
    """Turn a unique or foreign-key violation the checks missed into a 409, never a 500."""
    try:
        yield
    except IntegrityError as error:
        raise Conflict(
            "The change conflicts with existing data (a duplicate or a dangling link)"
        ) from error
