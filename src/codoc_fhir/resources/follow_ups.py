"""The writes that follow a create's INSERT, sent as one statement on PostgreSQL.

Once the new row is back (`Resource.insert_answered`), a create still has up to three
writes to make: the kept elements of the body (an UPDATE of the row just inserted), its
token rows and its first version. Each was a statement and a round trip of its own; on
PostgreSQL they now go as one, the UPDATE and the token INSERT as data-modifying CTEs of the
history INSERT (docs/PERFORMANCE.md, create). The three touch different rows, so that they
see one snapshot changes nothing. SQLite has no DML inside WITH: there they stay separate.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import Connection, Table, bindparam, select

from codoc_fhir.warehouse.copy import array_rows
from codoc_fhir.warehouse.schema import dwh_resource_history as history
from codoc_fhir.warehouse.schema import fhir_token

TOKEN_COLUMNS = ("table_name", "row_num", "element", "system", "code")
VERSION_COLUMNS = tuple(column.name for column in history.c if not column.primary_key)
# Every parameter has a prefix no warehouse column starts with: a parameter named like a
# column of the UPDATE's table would become one more SET of it.
KEPT_PREFIX, TOKEN_PREFIX, VERSION_PREFIX = "followup_kept_", "followup_token_", "followup_v_"


def write_follow_ups(
    conn: Connection,
    table: Table,
    num: int,
    kept: tuple[str | None] | None,
    tokens: list[dict[str, Any]],
    version: dict[str, Any],
) -> None:
    """Keep `kept` (a 1-tuple holding the JSON, or None when the row already holds it) in
    row `num` of `table`, insert the `tokens` rows and the `version` row, in one statement."""
    parameters = {f"{VERSION_PREFIX}{name}": version[name] for name in VERSION_COLUMNS}
    if kept is not None:
        parameters |= {f"{KEPT_PREFIX}num": num, f"{KEPT_PREFIX}json": kept[0]}
    for name in TOKEN_COLUMNS if tokens else ():
        parameters[f"{TOKEN_PREFIX}{name}"] = [token[name] for token in tokens]
    conn.execute(_statement(table, kept is not None, bool(tokens)), parameters)


@cache
def _statement(table: Table, with_kept: bool, with_tokens: bool) -> Any:
    """The history INSERT carrying the kept UPDATE and the token INSERT, built once per
    table and shape (the values are parameters)."""
    values = {
        name: bindparam(f"{VERSION_PREFIX}{name}", type_=history.c[name].type)
        for name in VERSION_COLUMNS
    }
    statement = history.insert().values(values)
    if with_kept:
        statement = statement.add_cte(_kept_update(table).cte("followup_kept"))
    if with_tokens:
        statement = statement.add_cte(_token_insert().cte("followup_tokens"))
    return statement


def _kept_update(table: Table) -> Any:
    key = next(iter(table.primary_key.columns))
    return (
        table.update()
        .where(key == bindparam(f"{KEPT_PREFIX}num", type_=key.type))
        .values(fhir_kept=bindparam(f"{KEPT_PREFIX}json", type_=table.c.fhir_kept.type))
    )


def _token_insert() -> Any:
    """INSERT INTO fhir_token SELECT FROM unnest(arrays): any number of rows, one shape."""
    rows = array_rows(fhir_token, TOKEN_COLUMNS, TOKEN_PREFIX)
    return fhir_token.insert().from_select(
        list(TOKEN_COLUMNS), select(*(rows.c[name] for name in TOKEN_COLUMNS))
    )
