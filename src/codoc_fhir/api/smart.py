"""SMART App Launch discovery: `GET /v4.3.0/.well-known/smart-configuration` (public).

The server checks tokens, it does not issue them: the authorization and token endpoints
are the identity provider's (CODOC_SMART_AUTHORIZE_URL, CODOC_SMART_TOKEN_URL), the issuer
is CODOC_JWT_ISSUER. The scopes and capabilities listed are those api/auth.py enforces:
system/user/patient contexts, SMART v1 (`read`, `write`, `*`) and v2 (`cruds`) permissions.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from codoc_fhir.api.routes import BASE, Server, _add
from codoc_fhir.config import Settings

SCOPES = [
    "openid",
    "fhirUser",
    "launch/patient",
    "patient/*.read",
    "patient/*.rs",
    "patient/*.cruds",
    "user/*.read",
    "user/*.write",
    "user/*.cruds",
    "system/*.read",
    "system/*.cruds",
]
CAPABILITIES = [
    "launch-standalone",
    "client-public",
    "client-confidential-symmetric",
    "client-confidential-asymmetric",
    "context-standalone-patient",
    "permission-patient",
    "permission-user",
    "permission-v1",
    "permission-v2",
]


def smart_configuration(settings: Settings) -> dict[str, Any]:
    """The discovery document; endpoints only when configured."""
    document: dict[str, Any] = {}
    if settings.jwt_issuer:
        document["issuer"] = settings.jwt_issuer
    if settings.smart_authorize_url:
        document["authorization_endpoint"] = settings.smart_authorize_url
    if settings.smart_token_url:
        document["token_endpoint"] = settings.smart_token_url
    document.update(
        grant_types_supported=["authorization_code", "client_credentials"],
        response_types_supported=["code"],
        code_challenge_methods_supported=["S256"],
        token_endpoint_auth_methods_supported=["client_secret_basic", "private_key_jwt"],
        scopes_supported=SCOPES,
        capabilities=CAPABILITIES,
    )
    return document


def install_smart_routes(app: FastAPI, server: Server) -> None:
    """The discovery route: public (api/auth.py `is_public`), plain JSON as SMART says."""
    body = orjson.dumps(smart_configuration(server.settings))

    async def discovery(request: Request) -> Response:
        return Response(body, media_type="application/json")

    doc = {
        "summary": "SMART App Launch discovery: the identity provider, scopes, capabilities",
        "responses": {"200": {"description": "The SMART configuration (JSON)"}},
    }
    path = f"{BASE}/.well-known/smart-configuration"
    _add(app, path, discovery, "GET", "Capabilities", True, openapi_extra=doc)
