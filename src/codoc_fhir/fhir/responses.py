"""The JSON response class: orjson, `application/fhir+json` unless asked otherwise, and
content negotiation: JSON is the only format served, so an Accept header (or `_format`)
that admits no JSON is a 406."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from codoc_fhir.fhir.errors import NotAcceptable

FHIR_JSON = "application/fhir+json"
PLAIN_JSON = "application/json"
# Media ranges of an Accept header that JSON satisfies; `_format` values meaning JSON.
JSON_RANGES = frozenset({FHIR_JSON, PLAIN_JSON, "application/*", "*/*", "*", "json"})
JSON_FORMATS = frozenset({"json", FHIR_JSON, PLAIN_JSON})


def accepts_json(accept: str) -> bool:
    """Whether an Accept header admits JSON: none, `*/*`, or a JSON type not given q=0."""
    if not accept.strip():
        return True
    for item in accept.split(","):
        media, *params = (part.strip().lower() for part in item.split(";"))
        media = (media.split() or [""])[0]  # a media type has no spaces: ignore trailing junk
        refused = any(param.replace(" ", "") in ("q=0", "q=0.0", "q=0.00") for param in params)
        if media in JSON_RANGES and not refused:
            return True
    return False


def check_acceptable(accept: str, wanted_format: str | None) -> None:
    """406 when the client can only take another format than JSON (XML, most often)."""
    media = (wanted_format or "").split(";")[0].strip().lower().replace(" ", "+")
    if wanted_format and media not in JSON_FORMATS:
        raise NotAcceptable(f"Format {wanted_format!r} is not served: only JSON (_format=json)")
    if not accepts_json(accept):
        raise NotAcceptable(
            f"Accept {accept[:100]!r} admits no JSON: only application/fhir+json "
            "and application/json are served"
        )


class FhirJSONResponse(Response):
    media_type = FHIR_JSON

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def answer_media_type(request: Request) -> str:
    """`application/json` when the client asked for it and not for fhir+json."""
    return media_type_for(request.headers.get("accept", ""))


def media_type_for(accept: str) -> str:
    """The content type answered to an Accept header (see answer_media_type)."""
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
