"""What differs between a resource as sent and as read back (CONTRACT section 9).

One comparison for every real-world test, so that each allowance is written once and the
tests cannot drift apart on what "unchanged" means. Only what section 9 allows is set
aside; everything else (a missing element, a changed value, an extra element, a list in
another order) is a difference:

- `id` and `meta` of the resource itself (contained resources keep theirs);
- reference spelling: `Type/id`, an absolute URL ending in `Type/id`, and a reference that
  named a resource of the same Bundle or import run (urn:uuid fullUrl or source id),
  looked up in `ids`, the run's map to the ids the server assigned;
- `display` on references to an Organization (the server writes the name);
- one coding of a thesaurus (`urn:codoc:fhir:...`) added before the sent codings of a
  CodeableConcept, which must all follow it, unchanged and in order;
- dateTimes and instants that carry a time: the same instant, in any timezone;
- the fixed values: Procedure, MedicationRequest, DiagnosticReport `status: unknown`,
  MedicationRequest `intent: order`, phenotype Observation `status: final`;
- the official identifier `{"use": "official", "value": <id>}` added first (section 3
  answers it on every resource);
- Patient: the given names of the first name joined into one string.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

THESAURUS_SYSTEM_PREFIX = "urn:codoc:fhir:"
FIXED_VALUES = {
    ("Procedure", "status"): "unknown",
    ("MedicationRequest", "status"): "unknown",
    ("DiagnosticReport", "status"): "unknown",
    ("MedicationRequest", "intent"): "order",
}
PHENOTYPE_ID_PREFIX = "phenotype-"
# What the Codoc documentation itself adds to an answer, listed on the resource's page:
# a Procedure performer's `function` (its organisation level, "auto-determined") and an
# Organization's read-only counters. Anything else added is a difference.
LEVEL_SYSTEM = "urn:codoc:fhir:organization-level"
COUNTER_PREFIX = "urn:codoc:fhir:extension:"
HL7_ORGANIZATION_TYPE = "http://terminology.hl7.org/CodeSystem/organization-type"
WITH_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$")
TYPE_AND_ID = re.compile(r"(?:^|/)([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")


def differences(
    sent: Mapping[str, Any], answered: Mapping[str, Any], ids: Mapping[str, str]
) -> list[str]:
    """Every difference between `sent` and `answered` that section 9 does not allow, as
    readable lines (`path: what`). `ids` maps what the source called a resource of the run
    (`urn:uuid:...`, `Type/source-id`, an absolute fullUrl) to `Type/our-id`."""
    kind = str(sent.get("resourceType"))
    found: list[str] = []
    if answered.get("resourceType") != kind:
        found.append(f"resourceType: sent {kind!r}, answered {answered.get('resourceType')!r}")
    top_sent = {key: value for key, value in sent.items() if key not in ("id", "meta")}
    top_answered = {key: value for key, value in answered.items() if key not in ("id", "meta")}
    _allow_fixed_values(kind, top_sent, top_answered, str(answered.get("id", "")))
    _allow_official_identifier(top_sent, top_answered, str(answered.get("id", "")))
    if kind == "Patient":
        _allow_joined_given_names(top_sent, top_answered)
    if kind == "Procedure":
        _allow_performer_function(top_sent, top_answered)
    if kind == "Organization":
        _allow_counters(top_sent, top_answered)
        _allow_filled_type_codings(top_sent, top_answered)
    _compare(top_sent, top_answered, kind, ids, found)
    return found


def canonical_reference(text: str, ids: Mapping[str, str]) -> str:
    """What the server must answer for a reference sent as `text`."""
    if text in ids:
        return ids[text]
    if text.startswith(("#", "urn:")):
        return text
    match = TYPE_AND_ID.search(text)
    if match is None:
        return text
    relative = f"{match.group(1)}/{match.group(2)}"
    return ids.get(relative, relative)


def _allow_fixed_values(
    kind: str, sent: dict[str, Any], answered: dict[str, Any], answered_id: str
) -> None:
    """A documented fixed value in the answer stands for whatever was sent."""
    fixed = {key: value for (of, key), value in FIXED_VALUES.items() if of == kind}
    if kind == "Observation" and answered_id.startswith(PHENOTYPE_ID_PREFIX):
        fixed["status"] = "final"
    for key, value in fixed.items():
        if key in sent and answered.get(key) == value:
            answered[key] = sent[key]


def _allow_official_identifier(sent: dict[str, Any], answered: dict[str, Any], ident: str) -> None:
    """Drop the official identifier the server puts first, when it is the only extra."""
    identifiers = answered.get("identifier")
    if not isinstance(identifiers, list) or not identifiers:
        return
    first = identifiers[0]
    official = (
        isinstance(first, dict)
        and first.get("use") == "official"
        and str(first.get("value")) == ident
        and set(first) <= {"use", "value", "system"}
    )
    if official and len(identifiers) == len(sent.get("identifier") or []) + 1:
        rest = identifiers[1:]
        if rest:
            answered["identifier"] = rest
        else:
            del answered["identifier"]


def _allow_performer_function(sent: dict[str, Any], answered: dict[str, Any]) -> None:
    """A performer's `function` naming its organisation level, when none was sent."""
    for position, performer in enumerate(answered.get("performer") or []):
        sent_performers = sent.get("performer") or []
        sent_one = sent_performers[position] if position < len(sent_performers) else {}
        codings = (performer.get("function") or {}).get("coding") or []
        if "function" not in sent_one and codings and codings[0].get("system") == LEVEL_SYSTEM:
            del performer["function"]


def _allow_counters(sent: dict[str, Any], answered: dict[str, Any]) -> None:
    """The Organization's read-only counter extensions (patients, stays, children)."""
    extensions = [
        item
        for item in answered.get("extension") or []
        if not str(item.get("url", "")).startswith(COUNTER_PREFIX)
        or item in (sent.get("extension") or [])
    ]
    if extensions:
        answered["extension"] = extensions
    else:
        answered.pop("extension", None)


def _allow_filled_type_codings(sent: dict[str, Any], answered: dict[str, Any]) -> None:
    """The system and display the server fills in on an HL7 organization-type coding sent
    as a bare level code (`{"code": "prov"}`), as the Organization page documents."""
    pairs = zip(sent.get("type") or [], answered.get("type") or [], strict=False)
    for concept_sent, concept in pairs:
        sent_codings = concept_sent.get("coding") or []
        for coding in concept.get("coding") or []:
            same = [c for c in sent_codings if c.get("code") == coding.get("code")]
            if coding.get("system") != HL7_ORGANIZATION_TYPE or not same:
                continue
            for key in ("system", "display"):
                if key not in same[0]:
                    coding.pop(key, None)


def _allow_joined_given_names(sent: dict[str, Any], answered: dict[str, Any]) -> None:
    """name[0].given ["Peter", "James"] may come back as ["Peter James"]."""
    sent_names, answered_names = sent.get("name"), answered.get("name")
    if not (isinstance(sent_names, list) and isinstance(answered_names, list)):
        return
    if not (sent_names and answered_names):
        return
    sent_given = sent_names[0].get("given")
    answered_given = answered_names[0].get("given")
    if isinstance(sent_given, list) and answered_given == [" ".join(sent_given)]:
        answered_names[0] = {**answered_names[0], "given": sent_given}


def _compare(sent: Any, answered: Any, path: str, ids: Mapping[str, str], found: list[str]) -> None:
    if isinstance(sent, dict) and isinstance(answered, dict):
        _compare_objects(sent, answered, path, ids, found)
    elif isinstance(sent, list) and isinstance(answered, list):
        _compare_lists(sent, answered, path, ids, found)
    elif not _same_value(sent, answered):
        found.append(f"{path}: sent {sent!r}, answered {answered!r}")


def _compare_objects(
    sent: dict[str, Any],
    answered: dict[str, Any],
    path: str,
    ids: Mapping[str, str],
    found: list[str],
) -> None:
    if isinstance(sent.get("reference"), str):
        sent, answered = _reference_view(sent, answered, ids)
    if isinstance(answered.get("coding"), list):
        answered = _without_thesaurus_coding(sent, answered)
    for key in sorted(set(sent) | set(answered)):
        where = f"{path}.{key}"
        if key not in answered:
            found.append(f"{where}: missing (sent {sent[key]!r})")
        elif key not in sent:
            found.append(f"{where}: extra element answered {answered[key]!r}")
        else:
            _compare(sent[key], answered[key], where, ids, found)


def _compare_lists(
    sent: list[Any], answered: list[Any], path: str, ids: Mapping[str, str], found: list[str]
) -> None:
    for index, (one, other) in enumerate(zip(sent, answered, strict=False)):
        _compare(one, other, f"{path}[{index}]", ids, found)
    for index in range(len(answered), len(sent)):
        found.append(f"{path}[{index}]: missing (sent {sent[index]!r})")
    for index in range(len(sent), len(answered)):
        found.append(f"{path}[{index}]: extra element answered {answered[index]!r}")


def _reference_view(
    sent: dict[str, Any], answered: dict[str, Any], ids: Mapping[str, str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The sent Reference as the server must spell it; Organization displays set aside."""
    expected = {**sent, "reference": canonical_reference(sent["reference"], ids)}
    answered = dict(answered)
    if expected["reference"].startswith("Organization/"):
        expected.pop("display", None)
        answered.pop("display", None)
    return expected, answered


def _without_thesaurus_coding(sent: dict[str, Any], answered: dict[str, Any]) -> dict[str, Any]:
    """The answered CodeableConcept without the thesaurus coding put before the sent ones."""
    codings = answered["coding"]
    sent_count = len(sent.get("coding") or [])
    first = codings[0] if codings else None
    added = (
        len(codings) == sent_count + 1
        and isinstance(first, dict)
        and str(first.get("system", "")).startswith(THESAURUS_SYSTEM_PREFIX)
    )
    if not added:
        return answered
    rest = {**answered, "coding": codings[1:]}
    if sent_count == 0:
        del rest["coding"]
    return rest


def _same_value(sent: Any, answered: Any) -> bool:
    """Scalars: equal values of the same JSON type; dateTimes with a time as instants."""
    if isinstance(sent, bool) or isinstance(answered, bool):
        return type(sent) is type(answered) and sent == answered
    if isinstance(sent, int | float) and isinstance(answered, int | float):
        return sent == answered
    if isinstance(sent, str) and isinstance(answered, str):
        if sent == answered:
            return True
        if WITH_TIME.match(sent) and WITH_TIME.match(answered):
            return _instant(sent) == _instant(answered)
        return False
    return type(sent) is type(answered) and sent == answered


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
