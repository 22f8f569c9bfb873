"""Failures of `codoc-fhir import`: one per resource (or file), and their summary by cause.

A million-row load that fails on 40,000 resources must say why in a few lines: failures
are grouped by resource type and *cause*, the error's message with the values that
differ from one resource to the next (ids, numbers, quoted values) blanked out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from codoc_fhir.fhir.errors import FhirError

EXAMPLES = 3
_URN = re.compile(r"urn:(uuid|oid):[^\s,;'\")]+")
_REFERENCE = re.compile(r"\b([A-Z][A-Za-z]+)/[A-Za-z0-9\-\.:]+")
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_NUMBER = re.compile(r"(?<![\w.])\d+(?![\w.])")


@dataclass
class Failure:
    """A resource (or file) that could not be imported, and why."""

    path: Path
    line: int  # the line (NDJSON) or load-order rank (Bundle) the checkpoint counts
    resource_type: str
    source_id: str | None
    error: FhirError
    entry: int | None = None  # in a Bundle: the index in Bundle.entry

    @property
    def location(self) -> str:
        if self.entry is not None:
            return f"{self.path} Bundle.entry[{self.entry}]"
        return f"{self.path}:{self.line}"

    @property
    def cause(self) -> str:
        """The error without what is particular to this resource."""
        text = _URN.sub(r"urn:\1:…", self.error.diagnostics)
        text = _REFERENCE.sub(r"\1/…", text)
        text = _NUMBER.sub("N", _QUOTED.sub("'…'", text))
        return f"{self.error.status} {self.error.code}: {text}"

    def text(self) -> str:
        what = f"{self.resource_type}/{self.source_id}" if self.source_id else self.resource_type
        return f"{self.location}: {what}: {self.error.status} {self.error.code}: " + (
            self.error.diagnostics
        )

    def as_json(self) -> bytes:
        return orjson.dumps(
            {
                "file": str(self.path),
                "line": self.line,
                "entry": self.entry,
                "resourceType": self.resource_type,
                "id": self.source_id,
                "status": self.error.status,
                "cause": self.cause,
                "outcome": self.error.outcome(),
            }
        )


@dataclass
class Cause:
    """The failures of one type with one cause: how many, and the first few places."""

    count: int = 0
    examples: list[str] = field(default_factory=list)


@dataclass
class Causes:
    """Every failure of a run, by (type, cause)."""

    groups: dict[tuple[str, str], Cause] = field(default_factory=dict)

    def add(self, failure: Failure) -> None:
        group = self.groups.setdefault((failure.resource_type, failure.cause), Cause())
        group.count += 1
        if len(group.examples) < EXAMPLES:
            group.examples.append(failure.location)

    def text(self) -> str:
        """The summary's lines: the largest groups first."""
        if not self.groups:
            return ""
        lines = ["failures by cause:"]
        ranked = sorted(self.groups.items(), key=lambda item: (-item[1].count, item[0]))
        for (kind, cause), group in ranked:
            lines.append(f"  {group.count} {kind}: {cause}")
            more = ", ..." if group.count > len(group.examples) else ""
            lines.append(f"      at {', '.join(group.examples)}{more}")
        return "\n".join(lines)
