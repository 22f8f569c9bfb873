"""The query string of a search, parsed once into a typed `SearchRequest`.

Repeated parameters are AND-ed (one `SearchFilter` each); the comma-separated values of one
parameter are OR-ed. Result parameters (_count, _sort, _include...) are checked here too.
An unknown parameter or modifier is a 400 `not-supported`, unless the client sent
`Prefer: handling=lenient`: then it is ignored and left out of the self link.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from typing import Any

from codoc_fhir.fhir.errors import FhirError, Invalid, NotSupported
from codoc_fhir.search.kind import SearchKind, SearchParam

DEFAULT_COUNT = 20
SUMMARY_MODES = ("true", "text", "data", "false")  # _summary shapes (count aside)
MAX_COUNT = 1000
DEFAULT_MAX_VALUES = 100  # CODOC_MAX_SEARCH_VALUES
# Accepted and ignored: output options handled elsewhere, and `_totalMethod`, which fhirpy
# sends with `_count=0` to ask for the total (always computed here unless `_total=none`).
IGNORED = frozenset({"_format", "_pretty", "_totalMethod"})
TOTAL_MODES = ("none", "estimate", "accurate")


class TooCostly(FhirError):
    """A search asking for more work than the server bounds a request to (before any SQL)."""

    status, code = 400, "too-costly"


class Prefix(StrEnum):
    """Comparators of ordered parameters (date, number, quantity)."""

    EQ = "eq"
    NE = "ne"
    GT = "gt"
    LT = "lt"
    GE = "ge"
    LE = "le"
    SA = "sa"
    EB = "eb"
    AP = "ap"


ORDERED_TYPES = ("date", "number", "quantity")
PREFIXES = frozenset(prefix.value for prefix in Prefix)
MODIFIERS = {
    "token": ("not", "missing"),
    "reference": ("missing",),
    "date": ("missing",),
    "string": ("exact", "contains", "missing"),
    "quantity": ("missing",),
    "number": ("missing",),
    "uri": ("missing",),
}


@dataclass(frozen=True)
class SearchValue:
    """One comma-separated value: its prefix (ordered types) and its text."""

    text: str
    prefix: Prefix = Prefix.EQ


@dataclass(frozen=True)
class SearchFilter:
    """One `name[:modifier]=v1,v2` pair of the query string."""

    name: str
    type: str
    modifier: str | None
    values: tuple[SearchValue, ...]
    chain: Chain | None = None  # chained (`subject.family`) or reverse-chained (`_has:...`)

    @property
    def missing(self) -> bool | None:
        """For `:missing`, whether the client wants resources without a value."""
        if self.modifier != "missing":
            return None
        return self.values[0].text == "true"


@dataclass(frozen=True)
class Chain:
    """The other end of a chained or reverse-chained filter, one level deep.

    `ends`: for each type the chain may reach, the filter on it (parsed against that type's
    kinds, as a search of that type would parse it) and those kinds. `reverse`: for
    `_has:Type:param:...`, the reference parameter of Type pointing back at the searched
    resources (one end, Type's); None for a forward chain (`subject:Patient.family`).
    """

    ends: tuple[tuple[SearchFilter, tuple[SearchKind, ...]], ...]
    reverse: str | None = None


@dataclass(frozen=True)
class SortRule:
    name: str
    descending: bool = False


@dataclass(frozen=True)
class IncludeSpec:
    """`_include=Procedure:subject[:Patient]` (or the same for _revinclude)."""

    source_type: str
    param: str
    target_type: str | None = None

    def __str__(self) -> str:
        text = f"{self.source_type}:{self.param}"
        return f"{text}:{self.target_type}" if self.target_type else text


@dataclass
class SearchRequest:
    """Everything a search asks for, checked against the parameters the kinds declare."""

    filters: list[SearchFilter] = field(default_factory=list)
    sort: list[SortRule] = field(default_factory=list)
    count: int = DEFAULT_COUNT
    includes: list[IncludeSpec] = field(default_factory=list)
    revincludes: list[IncludeSpec] = field(default_factory=list)
    summary_count: bool = False
    summary: str = "false"  # true | text | data | false: the shape of each match
    total: str = "accurate"
    elements: list[str] | None = None
    cursor: str | None = None
    applied: list[tuple[str, str]] = field(default_factory=list)  # for the self link


def split_values(text: str) -> list[str]:
    """Comma-separated values; `\\,` is a literal comma."""
    parts = re.split(r"(?<!\\),", text)
    return [part.replace("\\,", ",") for part in parts]


def common_params(kind: SearchKind) -> dict[str, SearchParam]:
    """Parameters every kind has: _id and _lastUpdated."""
    return _common_params(kind.key, kind.table)


@cache
def _common_params(key: Any, table: Any) -> dict[str, SearchParam]:
    """Built once per (key column, table): `params_of` is asked several times by every
    search (parsing, each clause, each sort) and these depend on the columns alone.
    Callers must not change the dict (`params_of` copies it)."""
    return {
        "_id": SearchParam("_id", "token", columns=(key,), options={"id": True}),
        "_lastUpdated": SearchParam("_lastUpdated", "date", columns=(table.c.update_date,)),
    }


def params_of(kind: SearchKind) -> dict[str, SearchParam]:
    return {**common_params(kind), **kind.search_params}


def declared_type(kinds: Sequence[SearchKind], name: str) -> str | None:
    """The type of parameter `name` on any of `kinds` (None when none declares it)."""
    for kind in kinds:
        param = params_of(kind).get(name)
        if param is not None:
            return param.type
    return None


def sortable(kinds: Sequence[SearchKind], name: str) -> bool:
    """Whether every kind declaring `name` names a column to sort on."""
    declared = [params_of(kind)[name] for kind in kinds if name in params_of(kind)]
    return bool(declared) and all(
        param.columns or param.options.get("column") is not None for param in declared
    )


KindsOf = Callable[[str], Sequence[SearchKind]]


def chain_targets(param: SearchParam) -> tuple[Any, ...]:
    """What a reference parameter points at, for chains: its declared targets, or those a
    hand-written one declares (`chain_targets`: Organization references kept as a pair of
    level and number columns)."""
    return tuple(param.target or param.options.get("chain_targets") or ())


class _Parser:
    def __init__(
        self,
        kinds: Sequence[SearchKind],
        lenient: bool,
        known_types: Iterable[str],
        include_ok: Callable[[IncludeSpec], bool],
        max_values: int = DEFAULT_MAX_VALUES,
        kinds_of: KindsOf | None = None,
    ) -> None:
        self.kinds = kinds
        self.lenient = lenient
        self.known_types = set(known_types)
        self.include_ok = include_ok
        self.max_values = max_values
        self.value_count = 0
        self.kinds_of = kinds_of  # None: no chaining (a chain's own filter, a condition)
        self.request = SearchRequest()

    def count_values(self, key: str, count: int) -> None:
        """Every value is one more clause in the SQL: past the limit, refuse the request.

        Repeated parameters and comma-separated values count alike; the check runs while
        parsing, so a refused search never reaches the database.
        """
        self.value_count += count
        if self.value_count > self.max_values:
            raise TooCostly(
                f"The search names more than {self.max_values} values "
                "(repeated parameters and comma-separated values count alike)",
                expression=[key],
            )

    def reject(self, message: str, key: str) -> None:
        if not self.lenient:
            raise NotSupported(message, expression=[key])

    def add(self, key: str, value: str) -> None:
        if key in IGNORED:
            return
        handler = getattr(self, "result_" + key[1:], None) if key.startswith("_") else None
        if handler is not None and key not in ("_id", "_lastUpdated"):
            if handler(value, key) is not False:
                self.request.applied.append((key, value))
            return
        if self.filter(key, value):
            self.request.applied.append((key, value))

    def filter(self, key: str, value: str) -> bool:
        if key.startswith("_has:"):
            return self._has(key, value)
        if "." in key:
            return self._chain(key, value)
        name, _, modifier = key.partition(":")
        kind_type = declared_type(self.kinds, name)
        if kind_type is None:
            self.reject(f"Unknown search parameter {name!r} for this resource type", key)
            return False
        modifier_name = modifier or None
        if modifier_name and not self._modifier_ok(kind_type, modifier_name):
            self.reject(f"Modifier :{modifier_name} is not supported on {name!r}", key)
            return False
        if value == "":
            raise Invalid(f"Search parameter {key!r} has no value", expression=[key])
        if modifier_name == "missing" and value not in ("true", "false"):
            raise Invalid(f"{key} takes true or false", expression=[key])
        texts = split_values(value)
        self.count_values(key, len(texts))
        values = tuple(self._value(kind_type, text, modifier_name) for text in texts)
        self.request.filters.append(SearchFilter(name, kind_type, modifier_name, values))
        return True

    # --- chains ------------------------------------------------------------------------

    def _end(self, kinds: Sequence[SearchKind], key: str, value: str) -> SearchFilter | None:
        """`key=value` parsed as a search of `kinds` would (no further chaining); None when
        those kinds do not have the parameter."""
        parser = _Parser(kinds, False, self.known_types, self.include_ok)
        try:
            parser.filter(key, value)
        except NotSupported:
            return None
        return parser.request.filters[-1]

    def _chain(self, key: str, value: str) -> bool:
        """`subject:Patient.identifier=HIS|IPP1`, `subject.family=Martin`: a filter on the
        resources a reference parameter points at."""
        head, _, tail = key.partition(".")
        name, _, type_hint = head.partition(":")
        declared = [params_of(kind)[name] for kind in self.kinds if name in params_of(kind)]
        if self.kinds_of is None or not declared or any(p.type != "reference" for p in declared):
            self.reject(f"Chaining is only supported one level deep on a reference: {key!r}", key)
            return False
        types = {target.fhir_type for param in declared for target in chain_targets(param)}
        if type_hint:
            types &= {type_hint}
        ends = []
        for fhir_type in sorted(types & self.known_types):
            kinds = tuple(self.kinds_of(fhir_type))
            end = self._end(kinds, tail, value)
            if end is not None:
                ends.append((end, kinds))
        if not ends:
            self.reject(f"No resource {name!r} points at can be searched by {tail!r}", key)
            return False
        chain = Chain(tuple(ends))
        self.request.filters.append(SearchFilter(name, "reference", type_hint or None, (), chain))
        return True

    def _has(self, key: str, value: str) -> bool:
        """`_has:Procedure:subject:code=COLO001`: resources some Procedure whose `subject`
        points at them has that code."""
        parts = key.split(":")
        if len(parts) < 4 or self.kinds_of is None or parts[1] not in self.known_types:
            self.reject(f"Invalid {key!r}: expected _has:Type:reference:parameter", key)
            return False
        source, param_name, inner = parts[1], parts[2], ":".join(parts[3:])
        kinds = tuple(self.kinds_of(source))
        here = {(kind.fhir_type, kind.id_prefix) for kind in self.kinds}
        points_here = any(
            (target.fhir_type, target.id_prefix) in here
            for kind in kinds
            if param_name in params_of(kind)
            for target in chain_targets(params_of(kind)[param_name])
        )
        end = self._end(kinds, inner, value) if points_here else None
        if end is None:
            self.reject(f"{key!r}: {source}.{param_name} does not point here, or {inner!r}", key)
            return False
        chain = Chain(((end, kinds),), reverse=param_name)
        self.request.filters.append(SearchFilter("_has", "_has", None, (), chain))
        return True

    def _modifier_ok(self, kind_type: str, modifier: str) -> bool:
        if kind_type == "reference" and modifier in self.known_types:
            return True
        return modifier in MODIFIERS.get(kind_type, ())

    @staticmethod
    def _value(kind_type: str, text: str, modifier: str | None) -> SearchValue:
        if kind_type in ORDERED_TYPES and modifier != "missing" and text[:2] in PREFIXES:
            if len(text) > 2 and not text[2].isdigit() and text[2] != "-":
                return SearchValue(text)
            return SearchValue(text[2:], Prefix(text[:2]))
        return SearchValue(text)

    # --- result parameters (a method per name; False = not applied) -------------------

    def result_count(self, value: str, key: str) -> None:
        if not (value.isascii() and value.isdigit()):
            raise Invalid(f"_count must be a non-negative integer, got {value!r}", expression=[key])
        self.request.count = min(int(value), MAX_COUNT)

    def result_sort(self, value: str, key: str) -> bool:
        rules = []
        for item in split_values(value):
            name = item.lstrip("-")
            if not name or not sortable(self.kinds, name):
                self.reject(f"Sorting on {name!r} is not supported", key)
                return False
            rules.append(SortRule(name, item.startswith("-")))
        self.request.sort.extend(rules)
        return True

    def result_include(self, value: str, key: str) -> bool:
        return self._include(value, key, self.request.includes)

    def result_revinclude(self, value: str, key: str) -> bool:
        return self._include(value, key, self.request.revincludes)

    def _include(self, value: str, key: str, into: list[IncludeSpec]) -> bool:
        parts = value.split(":")
        if len(parts) not in (2, 3) or not all(parts) or parts[0] not in self.known_types:
            self.reject(f"Invalid {key} {value!r}: expected Type:parameter[:TargetType]", key)
            return False
        spec = IncludeSpec(*parts)
        if not self.include_ok(spec):
            self.reject(f"{key}={value} is not supported: {spec.param!r} is no reference", key)
            return False
        into.append(spec)
        return True

    def result_summary(self, value: str, key: str) -> bool:
        if value == "count":
            self.request.summary_count = True
        elif value in SUMMARY_MODES:
            self.request.summary = value
        else:
            self.reject(f"_summary={value} is not supported (true, text, data, count, false)", key)
            return False
        return True

    def result_total(self, value: str, key: str) -> None:
        if value not in TOTAL_MODES:
            raise Invalid(f"_total must be one of {', '.join(TOTAL_MODES)}", expression=[key])
        self.request.total = value

    def result_elements(self, value: str, key: str) -> None:
        self.request.elements = [item.strip() for item in value.split(",") if item.strip()]

    def result_cursor(self, value: str, key: str) -> bool:
        self.request.cursor = value
        return False  # never repeated in the self link


def parse_search(
    pairs: Iterable[tuple[str, str]],
    kinds: Sequence[SearchKind],
    *,
    lenient: bool = False,
    known_types: Iterable[str] = (),
    include_ok: Callable[[IncludeSpec], bool] = lambda spec: True,
    max_values: int = DEFAULT_MAX_VALUES,
    kinds_of: KindsOf | None = None,
) -> SearchRequest:
    """Parse query (or form) pairs against the parameters `kinds` declare.

    `known_types` are the FHIR types served (for :Type modifiers and _include); `include_ok`
    tells whether an _include/_revinclude names a declared reference parameter; `kinds_of`
    gives the kinds of a type, for chained and `_has` parameters (without it, none). More than
    `max_values` search values in all is a 400 `too-costly` (CODOC_MAX_SEARCH_VALUES).
    """
    parser = _Parser(kinds, lenient, known_types, include_ok, max_values, kinds_of)
    for key, value in pairs:
        parser.add(key, value)
    return parser.request


def is_lenient(prefer: str | None) -> bool:
    """`Prefer: handling=lenient` (strict is the default)."""
    return bool(prefer) and "handling=lenient" in (prefer or "").replace(" ", "").lower()
