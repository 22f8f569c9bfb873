"""Kept elements: what a warehouse row cannot hold, stored beside it and answered unchanged.

A mapping turns a resource into columns and columns back into a resource. Everything a
client sent that the columns do not give back (a name's `use`, a second identifier, a
SNOMED coding beside the thesaurus one, blood-pressure components, extensions) is kept:
`kept_elements(sent, answered)` computes it once per write, `with_kept(answered, kept)`
puts it back on every read.

The columns stay the truth: on a read the answer rendered from the columns wins wherever
it says something, and kept elements only fill what it does not say. So an SQL update of a
column shows in the next read, and a canonical form the contract defines (a reference
spelled `Type/id`, an instant in UTC, a fixed status) is answered, not the sent spelling.

Lists of objects (identifiers, codings, names, performers) are merged item by item. Which
answered item stands for which sent one is decided at write time, when both are known,
and stored as an alignment (`answered index -> sent index`): an item the columns render
(the IPP identifier) is merged into the sent item it came from, in the sent position; an
item only the columns give comes first when it comes before every rendered sent item (the
official identifier, the thesaurus coding), else right after the item it follows; sent
items the columns do not render stay where they were. Lists of plain values (given names)
are the columns' when the columns render them.

A kind whose columns hold part of a list in a form of its own (phenotype components)
hands in, as `sent`, that form in place of what it read (`Resource.kept_source`), so only
the rest is kept. And to keep the answer valid FHIR, a kept choice variant
(`deceasedBoolean`) gives way when the columns answer another variant of the same choice
(`deceasedDateTime` after an SQL update of the death date).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

# Elements a read answers from the server, never from what was sent.
NOT_KEPT = frozenset({"resourceType", "id", "meta"})

Alignments = dict[str, list[int]]


def kept_elements(sent: dict[str, Any], answered: dict[str, Any]) -> dict[str, Any] | None:
    """What of `sent` the `answered` resource (rendered from the columns alone) does not
    reproduce exactly: the whole of each such top-level element, with the alignments of its
    lists; None when the columns give back everything."""
    elements = {
        name: value
        for name, value in sent.items()
        if name not in NOT_KEPT and answered.get(name) != value
    }
    if not elements:
        return None
    alignments: Alignments = {}
    for name, value in elements.items():
        if name in answered:
            _align(value, answered[name], name, alignments)
    kept: dict[str, Any] = {"elements": elements}
    if alignments:
        kept["align"] = alignments
    return kept


def with_kept(answered: dict[str, Any], kept: dict[str, Any] | None) -> dict[str, Any]:
    """`answered` (rendered from the columns) completed with the kept elements."""
    if not kept:
        return answered
    alignments = kept.get("align") or {}
    # Only what the columns render can displace a kept choice variant: two kept elements
    # that merely look like variants (reasonCode, reasonReference) both come back.
    rendered = dict.fromkeys(answered)
    for name, value in kept["elements"].items():
        if _other_choice_answered(name, rendered):
            continue
        if name in answered:
            answered[name] = _merge(value, answered[name], name, alignments)
        else:
            answered[name] = value
    return answered


# The data types a choice element `[x]` ends with in R4B (`valueQuantity`, `onsetAge`).
CHOICE_TYPES = (
    "Base64Binary|Boolean|Canonical|Code|Date|DateTime|Decimal|Id|Instant|Integer|Markdown|"
    "Oid|PositiveInt|String|Time|UnsignedInt|Uri|Url|Uuid|Address|Age|Annotation|Attachment|"
    "CodeableConcept|Coding|ContactPoint|Count|Distance|Duration|HumanName|Identifier|Money|"
    "Period|Quantity|Range|Ratio|Reference|SampledData|Signature|Timing|ContactDetail|"
    "Contributor|DataRequirement|Expression|ParameterDefinition|RelatedArtifact|"
    "TriggerDefinition|UsageContext|Dosage|Meta"
)
CHOICE = re.compile(rf"([a-z][a-zA-Z]*?)(?:{CHOICE_TYPES})")


def _other_choice_answered(name: str, answered: dict[str, Any]) -> bool:
    """Whether `answered` holds another variant of the choice element `name` (value[x])."""
    choice = _choice(name)
    if choice is None:
        return False
    return any(other != name and _choice(other) == choice for other in answered)


@lru_cache(maxsize=4096)
def _choice(name: str) -> str | None:
    """The choice element an element name is a variant of (`value` for `valueQuantity`),
    or None; remembered: every read of a resource that keeps something asks it of each of
    its element names."""
    found = CHOICE.fullmatch(name)
    return found.group(1) if found else None


def kept_codings(kept: dict[str, Any] | None) -> Iterator[tuple[str, str | None, str]]:
    """(element, system, code) of every coding and identifier inside the kept elements,
    for token searches on the codes the columns do not hold."""
    if not kept:
        return
    for name, value in kept["elements"].items():
        for system, code in _codes(value, identifier=name == "identifier"):
            yield name, system, code


def _codes(value: Any, *, identifier: bool) -> Iterator[tuple[str | None, str]]:
    if isinstance(value, list):
        for item in value:
            yield from _codes(item, identifier=identifier)
    elif isinstance(value, dict):
        code = value.get("value") if identifier else value.get("code")
        if isinstance(code, str):
            system = value.get("system")
            yield (system if isinstance(system, str) else None), code
        for item in value.values():
            if isinstance(item, dict | list):
                yield from _codes(item, identifier=False)


# --- alignment (write time) -------------------------------------------------------------


def _align(sent: Any, answered: Any, path: str, out: Alignments) -> None:
    if isinstance(sent, dict) and isinstance(answered, dict):
        for key in sent.keys() & answered.keys():
            _align(sent[key], answered[key], f"{path}.{key}", out)
    elif _objects(sent) and _objects(answered):
        pairs = _pair_items(sent, answered)
        out[path] = pairs
        for position, match in enumerate(pairs):
            if match >= 0:
                _align(sent[match], answered[position], f"{path}.{position}", out)


def _objects(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _pair_items(sent: list[dict], answered: list[dict]) -> list[int]:
    """For each answered item, the index of the sent item it renders (-1: none).

    Equal items pair first; then the most shared leaf values (an identifier's system and
    value, a performer's reference type); then, for what is left, items at the same index.
    Items that contradict each other (two codings of different systems, references to
    different resource types) never pair.
    """
    pairs = [-1] * len(answered)
    free = set(range(len(sent)))
    for position, item in enumerate(answered):
        match = next((index for index in sorted(free) if sent[index] == item), None)
        if match is not None:
            pairs[position] = match
            free.discard(match)
    for position, item in enumerate(answered):
        if pairs[position] >= 0:
            continue
        leaves = set(_leaves(item))
        scored = [
            (len(leaves & set(_leaves(sent[index]))), -index)
            for index in free
            if not _contradict(sent[index], item)
        ]
        best = max(scored, default=(0, 0))
        if best[0] > 0:
            pairs[position] = -best[1]
            free.discard(-best[1])
    for position, item in enumerate(answered):
        if pairs[position] < 0 and position in free and not _contradict(sent[position], item):
            pairs[position] = position
            free.discard(position)
    return pairs


def _leaves(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, f"{path}.{key}")
            if key == "reference" and isinstance(item, str):
                yield f"{path}.@type", _reference_type(item)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item, path)
    else:
        yield path, value


def _contradict(sent: dict[str, Any], answered: dict[str, Any]) -> bool:
    systems = sent.get("system"), answered.get("system")
    if None not in systems and systems[0] != systems[1]:
        return True
    # Two identifiers (or contact points) with different values, two extensions with
    # different urls, are different items: the server's official id never stands for a
    # sent `use: official` identifier, a counter extension never for a sent extension.
    for key in ("value", "url"):
        pair = sent.get(key), answered.get(key)
        if all(isinstance(item, str) for item in pair) and pair[0] != pair[1]:
            return True
    sent_types = dict(_reference_types(sent))
    return any(
        path in sent_types and sent_types[path] != kind for path, kind in _reference_types(answered)
    )


def _reference_types(value: Any) -> Iterator[tuple[str, str]]:
    for path, leaf in _leaves(value):
        if path.endswith(".@type"):
            yield path, leaf


def _reference_type(reference: str) -> str:
    parts = reference.split("/")
    return parts[-2].lower() if len(parts) >= 2 else ""  # Codoc paths say "patient/1"


# --- merge (read time) ------------------------------------------------------------------

PARTIAL_DATE = re.compile(r"\d{4}(-\d{2}(-\d{2})?)?")


def _same_partial_date(sent: str, answered: str) -> bool:
    """Whether `answered` is what a timestamp column makes of the date `sent` (`2024-01`
    stored as its first instant, answered `2024-01-01T00:00:00Z`): then the date is
    answered as sent; once SQL moves the column, the column's value is."""
    if not PARTIAL_DATE.fullmatch(sent):
        return False
    start = sent + "-01-01"[len(sent) - 4 :]
    return answered in (start, f"{start}T00:00:00Z", f"{start}T00:00:00+00:00")


def _merge(sent: Any, answered: Any, path: str, alignments: Alignments) -> Any:
    if isinstance(sent, dict) and isinstance(answered, dict):
        merged = dict(sent)
        for key, value in answered.items():
            merged[key] = (
                _merge(sent[key], value, f"{path}.{key}", alignments) if key in sent else value
            )
        return merged
    if isinstance(sent, str) and isinstance(answered, str):
        return sent if _same_partial_date(sent, answered) else answered
    pairs = alignments.get(path)
    if pairs is None or not isinstance(sent, list) or not isinstance(answered, list):
        return answered
    merged_items: list[Any] = list(sent)
    first: list[Any] = []
    following: dict[int, list[Any]] = {}  # sent index -> answered-only items after it
    previous = -1
    for position, item in enumerate(answered):
        match = pairs[position] if position < len(pairs) else -1
        if 0 <= match < len(sent):
            merged_items[match] = _merge(sent[match], item, f"{path}.{position}", alignments)
            previous = match
        elif previous < 0:
            first.append(item)  # what the columns give before anything sent: first
        else:
            following.setdefault(previous, []).append(item)
    ordered = list(first)
    for index, item in enumerate(merged_items):
        ordered.append(item)
        ordered.extend(following.get(index, ()))
    return ordered
