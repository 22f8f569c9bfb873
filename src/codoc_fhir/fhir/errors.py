"""The error family: raise anywhere, converted to an OperationOutcome in one place."""

from __future__ import annotations

from typing import Any


class FhirError(Exception):
    """An error answered as an OperationOutcome with `status` and issue `code`."""

    status = 400
    code = "invalid"

    def __init__(
        self,
        diagnostics: str,
        *,
        expression: list[str] | None = None,
        status: int | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(diagnostics)
        self.diagnostics = diagnostics
        self.expression = expression
        self.headers = headers or {}
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code

    def outcome(self) -> dict[str, Any]:
        return operation_outcome(self.code, self.diagnostics, self.expression)


class Invalid(FhirError):
    status, code = 400, "invalid"


class Required(FhirError):
    status, code = 400, "required"


class ReferenceNotFound(FhirError):
    """A reference in the body names something that does not exist (400)."""

    status, code = 400, "not-found"


class NotFound(FhirError):
    status, code = 404, "not-found"


class Gone(FhirError):
    """The addressed resource existed and was deleted (its id is never reused)."""

    status, code = 410, "deleted"


class NotAcceptable(FhirError):
    status, code = 406, "not-supported"


class MethodNotAllowed(FhirError):
    status, code = 405, "not-supported"


class Conflict(FhirError):
    status, code = 409, "conflict"


class Duplicate(FhirError):
    status, code = 409, "duplicate"


class PreconditionFailed(FhirError):
    status, code = 412, "conflict"


class PayloadTooLarge(FhirError):
    status, code = 413, "too-costly"


class UnsupportedMediaType(FhirError):
    status, code = 415, "not-supported"


class NotImplementedYet(FhirError):
    status, code = 501, "not-supported"


def operation_outcome(
    code: str, diagnostics: str, expression: list[str] | None = None, severity: str = "error"
) -> dict[str, Any]:
    """An OperationOutcome with a single issue."""
    issue: dict[str, Any] = {"severity": severity, "code": code, "diagnostics": diagnostics}
    if expression:
        issue["expression"] = expression
    return {"resourceType": "OperationOutcome", "issue": [issue]}
