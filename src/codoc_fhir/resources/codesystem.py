"""CodeSystem: a thesaurus (`dwh_thesaurus`) and its concepts (`dwh_thesaurus_data`).

The resource id is the thesaurus's number (`/CodeSystem/3`); the Codoc path addresses it by
its code (`/codesystem/ALLERGIES/`), the number being accepted there too. Concepts travel
in `concept[]` and have their own routes (the codesystem_concepts package).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.engine import RowMapping

from codoc_fhir.config import Settings
from codoc_fhir.fhir import identifiers
from codoc_fhir.fhir.errors import Duplicate, Invalid, NotFound, Required
from codoc_fhir.fhir.validation import check_length, require
from codoc_fhir.resources import codesystem_concepts as concept_rows
from codoc_fhir.resources.base import Resource
from codoc_fhir.resources.concepts import CODESYSTEM_URL_PREFIX, codesystem_url
from codoc_fhir.search import catalog
from codoc_fhir.warehouse.schema import dwh_thesaurus, dwh_thesaurus_data

THESAURUS_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,29}$")


def check_thesaurus_code(code: str, source: str) -> str:
    """A thesaurus code: up to 30 letters, digits, `_`, `-` or `.` (it is a URL segment)."""
    if not THESAURUS_CODE.match(code):
        raise Invalid(
            f"Invalid CodeSystem code {code!r} (from {source}): use up to 30 letters, digits, "
            "'_', '-' or '.', starting with a letter or digit",
            expression=[source],
        )
    return code


def sent_code(body: dict[str, Any]) -> tuple[str | None, str]:
    """The code the body names (usual identifier, else url) and where it came from."""
    from_identifier = identifiers.single_usual_identifier(body)
    url = body.get("url")
    from_url = None
    if url is not None:
        if not url.startswith(CODESYSTEM_URL_PREFIX) or url == CODESYSTEM_URL_PREFIX:
            raise Invalid(
                f"url must be {CODESYSTEM_URL_PREFIX}<code>, got {url!r}", expression=["url"]
            )
        from_url = url[len(CODESYSTEM_URL_PREFIX) :]
    if from_identifier and from_url and from_identifier != from_url:
        raise Invalid(
            f"The usual identifier ({from_identifier}) and the url ({from_url}) name "
            "different codes",
            expression=["url"],
        )
    if from_identifier:
        return from_identifier, "identifier"
    return from_url, "url"


class CodeSystem(Resource):
    fhir_type = "CodeSystem"
    label = "CodeSystem"
    table = dwh_thesaurus
    codoc_path = "codesystem"
    patient_column_name = None
    children_change_row = True  # new concepts bump the thesaurus row_version (writes.py)
    search_params = catalog.codesystem_params()

    def kept_source(self, body: dict[str, Any]) -> dict[str, Any]:
        """Everything but `concept` and the server's own identifier: concepts live in
        dwh_thesaurus_data and change through their own routes too (a kept copy could bring
        back one those routes removed); the documented payloads send an official
        identifier without system, which is ours and ignored on input."""
        kept = {name: value for name, value in body.items() if name != "concept"}
        if isinstance(body.get("identifier"), list):
            kept["identifier"] = [
                item
                for item in body["identifier"]
                if not (isinstance(item, dict) and item.get("use") == "official")
                or item.get("system")
            ]
        return kept

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    # --- addressing --------------------------------------------------------------------

    def resolve_codoc_key(self, conn: Connection, key: str) -> int:
        """The thesaurus a Codoc path key names: its code, else its number."""
        found = conn.execute(
            select(dwh_thesaurus.c.thesaurus_num).where(dwh_thesaurus.c.thesaurus_code == key)
        ).scalar()
        if found is None and self.parse_fhir_id(key) is not None:
            found = conn.execute(
                select(dwh_thesaurus.c.thesaurus_num).where(
                    dwh_thesaurus.c.thesaurus_num == int(key)
                )
            ).scalar()
        if found is None:
            raise NotFound(f"CodeSystem {key} does not exist")
        return int(found)

    # --- input -------------------------------------------------------------------------

    def to_values(
        self, conn: Connection, body: dict[str, Any], current: RowMapping | None
    ) -> dict[str, Any]:
        title = check_length(require(body, "title"), 2000, "title")
        name = check_length(body.get("name"), 400, "name")
        values = {
            "thesaurus_code": self.code_for(conn, body, current),
            "name": name,
            "label": title,
            "description": check_length(body.get("description"), 4000, "description"),
        }
        for position, item in enumerate(body.get("concept") or []):
            concept_rows.parse_concept(item, f"concept[{position}]")
        return values

    def code_for(self, conn: Connection, body: dict[str, Any], current: RowMapping | None) -> str:
        """The thesaurus code: fixed once created, unique, taken from identifier/url/name."""
        code, source = sent_code(body)
        if current is not None:
            if code is not None and code != current["thesaurus_code"]:
                raise Invalid(
                    f"The code of CodeSystem {current['thesaurus_num']} is "
                    f"{current['thesaurus_code']}; it cannot change to {code}",
                    expression=[source],
                )
            return str(current["thesaurus_code"])
        if code is None:
            code, source = body.get("name"), "name"
        if not code:
            raise Required(
                "A CodeSystem needs a code: send a usual identifier, a url "
                f"{CODESYSTEM_URL_PREFIX}<code> or a name",
                expression=["identifier"],
            )
        check_thesaurus_code(str(code), source)
        taken = conn.execute(
            select(dwh_thesaurus.c.thesaurus_num).where(dwh_thesaurus.c.thesaurus_code == code)
        ).scalar()
        if taken is not None:
            raise Duplicate(
                f"CodeSystem with code {code} already exists (CodeSystem/{taken})",
                expression=[source],
            )
        return str(code)

    def write_children(self, conn: Connection, num: int, body: dict[str, Any]) -> None:
        """Concepts sent in concept[]: added on create, made the exact list on update."""
        if "concept" not in body:
            return
        code = conn.execute(
            select(dwh_thesaurus.c.thesaurus_code).where(dwh_thesaurus.c.thesaurus_num == num)
        ).scalar_one()
        concept_rows.replace_concepts(conn, self.settings, code, body.get("concept") or [])

    def before_delete(self, conn: Connection, num: int) -> None:
        """Refuse while facts use the concepts; then the concepts go with the thesaurus."""
        code = conn.execute(
            select(dwh_thesaurus.c.thesaurus_code).where(dwh_thesaurus.c.thesaurus_num == num)
        ).scalar_one()
        concept_nums = select(dwh_thesaurus_data.c.thesaurus_data_num).where(
            dwh_thesaurus_data.c.thesaurus_code == code
        )
        concept_rows.refuse_if_used(conn, self.settings, concept_nums, f"CodeSystem {code}")
        conn.execute(
            dwh_thesaurus_data.update()
            .where(dwh_thesaurus_data.c.thesaurus_code == code)
            .values(thesaurus_parent_num=None)
        )
        conn.execute(dwh_thesaurus_data.delete().where(dwh_thesaurus_data.c.thesaurus_code == code))

    # --- output ------------------------------------------------------------------------

    def load_related(self, conn: Connection, rows: Sequence[RowMapping]) -> dict[str, Any]:
        codes = [row["thesaurus_code"] for row in rows]
        return {"concepts": concept_rows.concepts_of(conn, codes)}

    def to_fhir(self, row: RowMapping, related: dict[str, Any]) -> dict[str, Any]:
        code = row["thesaurus_code"]
        concepts = related["concepts"].get(code, [])
        resource: dict[str, Any] = {
            "resourceType": "CodeSystem",
            "id": str(row["thesaurus_num"]),
            "url": codesystem_url(code),
            "identifier": [
                identifiers.official(row["thesaurus_num"]),
                identifiers.usual(code),
            ],
        }
        if row["name"]:
            resource["name"] = row["name"]
        resource["title"] = row["label"]
        resource["status"] = "active"
        if row["description"]:
            resource["description"] = row["description"]
        resource.update(caseSensitive=True, content="complete", count=len(concepts))
        if concepts:
            resource["concept"] = [concept_rows.concept_element(item) for item in concepts]
        return resource
