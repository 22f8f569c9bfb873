"""The statements of the fast create (resources/fast_create.py), compiled once to psycopg's
SQL: the create itself (the row, its re-checks, its tokens and first version in one
statement) and the few questions the cache asks (a concept, a name, a block of keys, a
stored first version)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import Column, Table, and_, bindparam, exists, func, select, true
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects.postgresql import psycopg as postgresql_psycopg
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.sqltypes import String

from codoc_fhir.resources.follow_ups import TOKEN_COLUMNS, VERSION_COLUMNS
from codoc_fhir.resources.links import ORG_LEVELS
from codoc_fhir.warehouse.copy import array_rows, sequence_of
from codoc_fhir.warehouse.schema import dwh_resource_history as history
from codoc_fhir.warehouse.schema import dwh_thesaurus_data, fhir_token

KEY_BLOCK = 16  # keys reserved from a table's sequence at a time, per process
NEW, CHECK, VERSION, TOKEN = "fast_new_", "fast_check_", "fast_v_", "fast_token_"


@dataclass(frozen=True)
class CompiledWrite:
    """A statement compiled once: SQL text, its fixed parameters (the literals of the
    statement) and its parameters' processors (none for most types on psycopg)."""

    sql: str
    fixed: dict[str, Any]
    processors: dict[str, Any]

    def parameters(self, values: dict[str, Any]) -> dict[str, Any]:
        values = self.fixed | values
        for name, process in self.processors.items():
            values[name] = process(values[name])
        return values


def _typed(name: str, column: Column) -> ColumnElement[Any]:
    """A parameter for `column` in a SELECT list, typed for PostgreSQL (an untyped NULL
    would be text). Strings keep their unbounded cast: a CAST to VARCHAR(n) would cut a
    value too long, where the column refuses it."""
    parameter = bindparam(name, type_=column.type)
    return parameter if isinstance(column.type, String) else sql_cast(parameter, column.type)


@cache
def write_statement(
    table: Table, columns: tuple[str, ...], levels: tuple[str, ...], with_tokens: bool
) -> CompiledWrite:
    """`WITH created AS (INSERT INTO table SELECT <row> WHERE <re-checks> RETURNING key),
    tokens AS (INSERT INTO fhir_token SELECT ... FROM unnest(...), created)
    INSERT INTO history SELECT <version> FROM created RETURNING history_num`: one row back
    when written, none when a re-check failed. Built once per table and shape."""
    key = next(iter(table.primary_key.columns))
    row = select(*(_typed(f"{NEW}{name}", table.c[name]) for name in columns))
    checks = [_key_handed_out(table, key), *_rechecks(levels)]
    created = (
        table.insert()
        .from_select(list(columns), row.where(and_(*checks)))
        .returning(key)
        .cte("created")
    )
    version = select(*(_typed(f"{VERSION}{name}", history.c[name]) for name in VERSION_COLUMNS))
    statement = (
        history.insert()
        .from_select(list(VERSION_COLUMNS), version.select_from(created))
        .returning(history.c.history_num)
        .add_cte(created)
    )
    if with_tokens:
        statement = statement.add_cte(_token_insert(created).cte("tokens"))
    return _compiled(statement)


def _key_handed_out(table: Table, key: Column) -> Any:
    """The reserved key is one the sequence has handed out, so that no later nextval can
    give it to another create: false for a block reserved before the sequence was reset
    (TRUNCATE ... RESTART IDENTITY; `pg_sequence_last_value` is NULL until the first
    nextval after it)."""
    handed_out = func.pg_sequence_last_value(sequence_of(table, key))
    return bindparam(f"{NEW}{key.name}", type_=key.type) <= handed_out


def _rechecks(levels: tuple[str, ...]) -> list[Any]:
    """The cached answers the rendering used, as they must still be in the warehouse."""
    concept = dwh_thesaurus_data.c
    checks = [
        exists().where(
            concept.thesaurus_data_num
            == bindparam(f"{CHECK}concept_num", type_=concept.thesaurus_data_num.type),
            concept.thesaurus_code
            == bindparam(f"{CHECK}concept_thesaurus", type_=concept.thesaurus_code.type),
            concept.concept_code
            == bindparam(f"{CHECK}concept_code", type_=concept.concept_code.type),
            concept.concept_str == bindparam(f"{CHECK}concept_str", type_=concept.concept_str.type),
        )
    ]
    for level_name in levels:
        level = ORG_LEVELS[level_name]
        key, name = level.table.c[level.key], level.table.c[level.name_column]
        checks.append(
            exists().where(
                key == bindparam(f"{CHECK}{level_name}_num", type_=key.type),
                name == bindparam(f"{CHECK}{level_name}_name", type_=name.type),
            )
        )
    return checks


def _token_insert(created: Any) -> Any:
    """The token rows, from arrays, inserted only beside a created row."""
    rows = array_rows(fhir_token, TOKEN_COLUMNS, TOKEN)
    chosen = select(*(rows.c[name] for name in TOKEN_COLUMNS)).select_from(
        rows.join(created, true())
    )
    return fhir_token.insert().from_select(list(TOKEN_COLUMNS), chosen)


def _compiled(statement: Any) -> CompiledWrite:
    dialect = postgresql_psycopg.dialect()
    compiled = statement.compile(dialect=dialect)
    processors = {}
    for name, parameter in compiled.binds.items():
        process = parameter.type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            processors[name] = process
    fixed = {
        name: value
        for name, value in compiled.construct_params(_check=False).items()
        if value is not None
    }
    return CompiledWrite(str(compiled), fixed, processors)


CONCEPT_SQL = _compiled(
    select(
        dwh_thesaurus_data.c.thesaurus_data_num,
        dwh_thesaurus_data.c.thesaurus_code,
        dwh_thesaurus_data.c.concept_code,
        dwh_thesaurus_data.c.concept_str,
    ).where(
        dwh_thesaurus_data.c.thesaurus_code == bindparam("thesaurus"),
        dwh_thesaurus_data.c.concept_code == bindparam("code"),
    )
)


FIRST_VERSION_SQL = _compiled(
    select(history.c.resource_json).where(
        history.c.fhir_type == bindparam("fhir_type"),
        history.c.fhir_id == bindparam("fhir_id"),
        history.c.version_id == 1,
    )
)


@cache
def name_sql(level_name: str) -> CompiledWrite:
    level = ORG_LEVELS[level_name]
    key, name = level.table.c[level.key], level.table.c[level.name_column]
    return _compiled(select(name.label("name")).where(key == bindparam("num")))


@cache
def keys_sql(table: Table, key: Column) -> CompiledWrite:
    sequence = func.nextval(sequence_of(table, key))
    numbers = select(sequence.label("num")).select_from(func.generate_series(1, KEY_BLOCK))
    return _compiled(numbers)
