"""The JSON response class: orjson, `application/fhir+json` unless asked otherwise."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

FHIR_JSON = "application/fhir+json"
PLAIN_JSON = "application/json"


class FhirJSONResponse(Response):
    media_type = FHIR_JSON

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def answer_media_type(request: Request) -> str:
    """`application/json` when the client asked for it and not for fhir+json."""
    accept = request.headers.get("accept", "")
    if "application/fhir+json" not in accept and "application/json" in accept:
        return PLAIN_JSON + "; charset=utf-8"
    return FHIR_JSON + "; charset=utf-8"


def fhir_response(
    request: Request,
    content: Any,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    """A FHIR JSON response honouring the Accept header and `_pretty`."""
    option = orjson.OPT_INDENT_2 if request.query_params.get("_pretty") == "true" else 0
    return Response(
        orjson.dumps(content, option=option),
        status_code=status,
        headers=headers,
        media_type=answer_media_type(request),
    )
