"""The interactive API docs, served offline, and an OpenAPI schema that describes resources.

Swagger UI's assets come from the `swagger-ui-bundle-v2` package and are served by this
server under /docs/static: the /docs page loads nothing from the Internet. Each FHIR
route documents its request and response bodies with a summary of the resource's R4B
fields (taken from the fhir.resources model, trimmed to one level).
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

from codoc_fhir.config import Settings

STATIC = "/docs/static"
FHIR_JSON = "application/fhir+json"
OUTCOME = {"$ref": "#/components/schemas/OperationOutcome"}
INTERACTION_STATUS = {"create": "201", "delete": "204"}
SUMMARY = {
    "read": "Read {a} {type} by id",
    "search": "Search {type} resources (a searchset Bundle)",
    "create": "Create {a} {type} (the server assigns the id)",
    "update": "Replace {a} {type} (full update)",
    "patch": "Partially update {a} {type} (merge JSON, or JSON Patch)",
    "delete": "Delete {a} {type} (409 while other resources reference it)",
    "history": "Versions of {type} resources, newest first (a history Bundle)",
    "vread": "Read one version of {a} {type}",
}
BUNDLE_ANSWERS = ("search", "history")


def install_docs(app: FastAPI, settings: Settings, type_names: list[str]) -> None:
    """/docs (offline Swagger UI) and the resource schemas in /openapi.json."""
    from swagger_ui_bundle import swagger_ui_path

    app.mount(STATIC, StaticFiles(directory=str(swagger_ui_path)), name="swagger-ui")

    async def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}/openapi.json",
            title="codoc-fhir API",
            swagger_js_url=f"{root}{STATIC}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{STATIC}/swagger-ui.css",
            swagger_favicon_url=f"{root}{STATIC}/favicon-32x32.png",
        )

    app.add_route("/docs", docs, include_in_schema=False)
    app.add_route("/docs/", docs, include_in_schema=False)
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        referenced = set(re.findall(r"#/components/schemas/(\w+)", json.dumps(schema)))
        for name in sorted({*type_names, *referenced} - set(schemas)):
            schemas[name] = resource_schema(name)
        if settings.auth_enabled:
            schema["components"]["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            }
            schema["security"] = [{"bearer": []}]
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


@lru_cache(maxsize=64)
def resource_schema(fhir_type: str) -> dict[str, Any]:
    """A one-level JSON schema of a FHIR R4B resource: its fields, types and descriptions."""
    from fhir.resources.R4B import get_fhir_model_class

    try:
        full = get_fhir_model_class(fhir_type).model_json_schema()
    except (KeyError, ValueError, AttributeError, ImportError):
        return {"type": "object", "description": f"A {fhir_type} (see the FHIR R4B spec)"}
    properties: dict[str, Any] = {"resourceType": {"type": "string", "enum": [fhir_type]}}
    for name, spec in full.get("properties", {}).items():
        if name.startswith("_") or name in ("fhir_comments", "resource_type"):
            continue
        properties[name] = _field_schema(spec)
    return {
        "type": "object",
        "description": (full.get("description") or "")[:500],
        "required": ["resourceType"],
        "properties": properties,
    }


def _field_schema(spec: dict[str, Any]) -> dict[str, Any]:
    """A field's type without patterns or nested definitions (objects stay open)."""
    options = [item for item in spec.get("anyOf", [spec]) if item.get("type") != "null"]
    shape = options[0] if options else {}
    kind = shape.get("type")
    out: dict[str, Any]
    if kind == "array":
        item_type = (shape.get("items") or {}).get("type")
        items = {"type": item_type} if item_type in ("string", "number", "boolean") else {}
        out = {"type": "array", "items": items or {"type": "object"}}
    elif kind in ("string", "number", "integer", "boolean"):
        out = {"type": kind}
    else:
        out = {"type": "object"}
    if spec.get("description"):
        out["description"] = str(spec["description"])[:300]
    return out


def success_status(interaction: str) -> int:
    """The status a successful `interaction` answers (201 create, 204 delete, else 200)."""
    return int(INTERACTION_STATUS.get(interaction, "200"))


def operation_doc(fhir_type: str, interaction: str, summary: str | None = None) -> dict[str, Any]:
    """The openapi_extra of one route: summary (the interaction's unless given), request
    body and responses."""
    resource = {"$ref": f"#/components/schemas/{fhir_type}"}
    answer = {"$ref": "#/components/schemas/Bundle"} if interaction in BUNDLE_ANSWERS else resource
    status = INTERACTION_STATUS.get(interaction, "200")
    ok: dict[str, Any] = {"description": "Success"}
    if status != "204":
        ok["content"] = {FHIR_JSON: {"schema": answer}}
    responses: dict[str, Any] = {status: ok}
    for code, meaning in (
        ("400", "Invalid input"),
        ("401", "Authentication required (auth on)"),
        ("403", "Scope does not allow this"),
        ("404", "Not found"),
        ("429", "Rate limited"),
    ):
        responses[code] = {"description": meaning, "content": {FHIR_JSON: {"schema": OUTCOME}}}
    doc: dict[str, Any] = {
        "summary": summary
        or SUMMARY[interaction].format(type=fhir_type, a="an" if fhir_type[0] in "AEIOU" else "a"),
        "responses": responses,
    }
    if interaction in ("create", "update", "patch"):
        content: dict[str, Any] = {
            FHIR_JSON: {"schema": resource},
            "application/json": {"schema": resource},
        }
        if interaction == "patch":
            content["application/json-patch+json"] = {
                "schema": {"type": "array", "items": {"type": "object"}}
            }
        doc["requestBody"] = {"required": True, "content": content}
    return doc


def custom_doc(summary: str, answer: str, body: str | None = None) -> dict[str, Any]:
    """The openapi_extra of an operation route (`$validate`, `$lookup`...): its summary,
    the resource it answers and, for a POST, the resource it takes."""
    doc = operation_doc(answer, "read")
    doc["summary"] = summary
    if body is not None:
        schema = {"$ref": f"#/components/schemas/{body}"}
        doc["requestBody"] = {
            "required": True,
            "content": {FHIR_JSON: {"schema": schema}, "application/json": {"schema": schema}},
        }
    return doc
