"""A test client that checks every FHIR resource the server answers against R4B."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi.testclient import TestClient
from fhir.resources.R4B import get_fhir_model_class

BASE = "/v4.3.0"


def assert_valid_fhir(resource: dict[str, Any]) -> None:
    """Raise if `resource` is not a valid FHIR R4B resource (Bundles: every entry too)."""
    model = get_fhir_model_class(resource["resourceType"])
    model.model_validate(resource)
    for entry in resource.get("entry") or []:
        if "resource" in entry:
            assert_valid_fhir(entry["resource"])


class FhirTestClient(TestClient):
    """TestClient whose JSON answers with a resourceType are validated with fhir.resources."""

    def __init__(self, app: Any, **kwargs: Any) -> None:
        kwargs.setdefault("base_url", "http://testserver")
        super().__init__(app, **kwargs)

    def request(self, method: str, url: Any, *args: Any, **kwargs: Any) -> httpx.Response:  # type: ignore[override]
        response = super().request(method, url, *args, **kwargs)
        content_type = response.headers.get("content-type", "")
        if "json" in content_type and "ndjson" not in content_type and response.content:
            body = response.json()
            if isinstance(body, dict) and "resourceType" in body:
                assert_valid_fhir(body)
        return response
