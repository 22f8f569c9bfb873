"""The CapabilityStatement, generated from the registry (never a list kept by hand)."""

from __future__ import annotations

from typing import Any

from codoc_fhir import FHIR_VERSION, __version__
from codoc_fhir.config import Settings
from codoc_fhir.resources.registry import Registry

BULK_DATA = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition"
PATIENT_OPERATIONS = [
    {"name": "export", "definition": f"{BULK_DATA}/patient-export"},
    {
        "name": "everything",
        "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
    },
]
TYPE_OPERATIONS = [
    {"name": "validate", "definition": "http://hl7.org/fhir/OperationDefinition/Resource-validate"},
]
TERMINOLOGY = "http://hl7.org/fhir/OperationDefinition"
TYPE_EXTRA = {
    "Patient": PATIENT_OPERATIONS,
    "CodeSystem": [
        {"name": "lookup", "definition": f"{TERMINOLOGY}/CodeSystem-lookup"},
        {"name": "validate-code", "definition": f"{TERMINOLOGY}/CodeSystem-validate-code"},
    ],
}
# Served without being stored: the implicit all-codes ValueSet of each thesaurus.
VALUESET = {
    "type": "ValueSet",
    "operation": [{"name": "expand", "definition": f"{TERMINOLOGY}/ValueSet-expand"}],
}
SECURITY_SYSTEM = "http://terminology.hl7.org/CodeSystem/restful-security-service"
OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
COMMON_SEARCH = (
    ("_id", "token"),
    ("_lastUpdated", "date"),
)


def _includes(registry: Registry, fhir_type: Any) -> tuple[list[str], list[str]]:
    """searchInclude (this type's references) and searchRevInclude (references to it)."""
    forward: list[str] = []
    reverse: list[str] = []
    for other in registry:
        for kind in other.kinds:
            for name, param in kind.search_params.items():
                targets = param.target if param.type == "reference" else None
                if not targets:
                    continue
                if other.name == fhir_type.name:
                    forward.append(f"{other.name}:{name}")
                if any(target.fhir_type == fhir_type.name for target in targets):
                    reverse.append(f"{other.name}:{name}")
    return sorted(set(forward)), sorted(set(reverse))


def _resource_entry(registry: Registry, fhir_type: Any) -> dict[str, Any]:
    interactions: list[str] = []
    params: dict[str, str] = dict(COMMON_SEARCH)
    for kind in fhir_type.kinds:
        for interaction in kind.interactions:
            if interaction not in interactions:
                interactions.append(interaction)
        for name, param in kind.search_params.items():
            params.setdefault(name, param.type)
    entry: dict[str, Any] = {
        "type": fhir_type.name,
        "interaction": [{"code": code} for code in interactions],
        "versioning": "versioned-update",
        "readHistory": True,
        "updateCreate": False,
        "conditionalCreate": True,
        "conditionalUpdate": True,
        "conditionalDelete": "single",
    }
    if params:
        entry["searchParam"] = [
            {"name": name, "type": kind} for name, kind in sorted(params.items())
        ]
    entry["operation"] = [*TYPE_OPERATIONS, *TYPE_EXTRA.get(fhir_type.name, [])]
    forward, reverse = _includes(registry, fhir_type)
    if forward:
        entry["searchInclude"] = forward
    if reverse:
        entry["searchRevInclude"] = reverse
    return entry


def rest_security(settings: Settings) -> dict[str, Any] | None:
    """rest.security naming SMART (and the identity provider's endpoints) when auth is on."""
    if not settings.auth_enabled:
        return None
    security: dict[str, Any] = {
        "cors": bool(settings.cors_origins.strip()),
        "service": [{"coding": [{"system": SECURITY_SYSTEM, "code": "SMART-on-FHIR"}]}],
        "description": "Bearer JWT with SMART scopes; see /.well-known/smart-configuration",
    }
    uris = [
        {"url": name, "valueUri": value}
        for name, value in (
            ("authorize", settings.smart_authorize_url),
            ("token", settings.smart_token_url),
        )
        if value
    ]
    if uris:
        security["extension"] = [{"url": OAUTH_URIS, "extension": uris}]
    return security


def capability_statement(registry: Registry, settings: Settings) -> dict[str, Any]:
    """What this server does: every registered resource with its interactions."""
    rest: dict[str, Any] = {
        "mode": "server",
        "resource": [
            *(_resource_entry(registry, fhir_type) for fhir_type in registry),
            VALUESET,
        ],
        "interaction": [
            {"code": "transaction"},
            {"code": "batch"},
            {"code": "history-system"},
        ],
        "operation": [{"name": "export", "definition": f"{BULK_DATA}/export"}],
    }
    security = rest_security(settings)
    if security is not None:
        rest["security"] = security
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "",
        "publisher": "codoc-fhir",
        "kind": "instance",
        "software": {"name": "codoc-fhir", "version": __version__},
        "implementation": {"description": "FHIR R4B API over the Codoc clinical data warehouse"},
        "fhirVersion": FHIR_VERSION,
        "format": ["application/fhir+json", "json"],
        "patchFormat": ["application/json", "application/json-patch+json"],
        "rest": [rest],
    }
