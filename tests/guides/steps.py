"""Small helpers shared by the guide replays: send a step, check its status, count rows."""

from __future__ import annotations

from typing import Any

import httpx

BASE = "/v4.3.0"


def expect(response: httpx.Response, status: int) -> Any:
    """Assert the documented status code and return the JSON body (None for an empty body)."""
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    return response.json() if response.content else None


def issue(response: httpx.Response, status: int, code: str) -> str:
    """Assert an OperationOutcome with `status` and issue `code`; return its diagnostics."""
    outcome = expect(response, status)
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == code
    return str(outcome["issue"][0].get("diagnostics", ""))


def usual_identifier(resource: dict[str, Any]) -> str:
    """The value of the first client identifier (the official one, the id, comes first; a
    client identifier is answered with the `use` it was sent with, none when none was)."""
    return next(item["value"] for item in resource["identifier"] if item.get("use") != "official")
