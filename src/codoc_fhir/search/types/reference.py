"""Reference parameters: `Patient/1`, `1`, an absolute URL, `:Type` and `:missing`."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import and_, false, or_

from codoc_fhir.fhir.references import key_number
from codoc_fhir.search.kind import SearchKind, SearchParam
from codoc_fhir.search.model import SearchFilter

_REFERENCE = re.compile(r"(?:^|/)([A-Za-z]+)/([A-Za-z0-9\-\.]{1,64})/?$")


def parse(text: str, type_hint: str | None) -> tuple[str | None, str]:
    """(type or None, id) of a reference search value."""
    match = _REFERENCE.search(text)
    if match:
        return match.group(1), match.group(2)
    return type_hint, text


def target_key(target: Any, type_name: str | None, ident: str) -> int | None:
    """The number `ident` names in `target`'s column, or None if it names another thing."""
    if type_name is not None and type_name.lower() != target.fhir_type.lower():
        return None
    if target.id_prefix:
        if not ident.startswith(target.id_prefix):
            return None
        ident = ident[len(target.id_prefix) :]
    return key_number(ident)


def clause(kind: SearchKind, param: SearchParam, search_filter: SearchFilter) -> Any:
    """The WHERE clause of a reference filter on `kind`."""
    targets = param.target or ()
    if search_filter.missing is not None:
        if search_filter.missing:
            return and_(*(target.column.is_(None) for target in targets))
        return or_(*(target.column.is_not(None) for target in targets))
    type_hint = search_filter.modifier
    conditions = []
    for value in search_filter.values:
        type_name, ident = parse(value.text, type_hint)
        if type_hint and type_name and type_name.lower() != type_hint.lower():
            continue
        for target in targets:
            key = target_key(target, type_name, ident)
            if key is not None:
                conditions.append(target.column == key)
    return or_(false(), *conditions)
