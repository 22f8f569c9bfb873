"""Thesaurus concept reads: the concepts of several thesauri at once, one concept by code
or number."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, select
from sqlalchemy.engine import Row

from codoc_fhir.fhir.errors import NotFound
from codoc_fhir.fhir.references import key_number
from codoc_fhir.warehouse.schema import dwh_thesaurus_data as table


def concepts_of(conn: Connection, codes: Iterable[str]) -> dict[str, list[Row]]:
    """The concepts of each thesaurus, in creation order, in one query."""
    wanted = set(codes)
    found: dict[str, list[Row]] = {code: [] for code in wanted}
    if not wanted:
        return found
    query = (
        select(table).where(table.c.thesaurus_code.in_(wanted)).order_by(table.c.thesaurus_data_num)
    )
    for row in conn.execute(query):
        found[row.thesaurus_code].append(row)
    return found


def find_concept(conn: Connection, thesaurus_code: str, key: str, *, lock: bool = False) -> Row:
    """The concept a key names: its code, else its number; 404 when neither matches.

    With `lock` (a write follows), the row stays locked until the transaction ends, so an
    If-Match check and the write that follows it cannot interleave with another writer's.
    """
    in_thesaurus = select(table).where(table.c.thesaurus_code == thesaurus_code)
    if lock:
        in_thesaurus = in_thesaurus.with_for_update()
    row = conn.execute(in_thesaurus.where(table.c.concept_code == key)).first()
    concept_num = key_number(key)
    if row is None and concept_num is not None:
        row = conn.execute(in_thesaurus.where(table.c.thesaurus_data_num == concept_num)).first()
    if row is None:
        raise NotFound(f"Concept {key} does not exist in CodeSystem {thesaurus_code}")
    return row
