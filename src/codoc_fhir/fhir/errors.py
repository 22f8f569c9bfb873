"""The error family: raise anywhere, converted to an OperationOutcome in one place."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

Method = TypeVar("Method", bound=Callable[..., Any])


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


class Forbidden(FhirError):
    """The caller's scopes do not grant the interaction (raised by the interaction layer's
    Caller, so it lives with the other errors rather than in the HTTP layer)."""

    status, code = 403, "forbidden"


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


class NotSupported(FhirError):
    """A request the server understands but does not do (a search modifier, a Bundle
    method, an operation): 400, unlike a whole feature not built (501)."""

    status, code = 400, "not-supported"


class NotImplementedYet(FhirError):
    status, code = 501, "not-supported"


class Transient(FhirError):
    """The database is away or busy: nothing was done, the same request may be retried."""

    status, code = 503, "transient"


def operation_outcome(
    code: str, diagnostics: str, expression: list[str] | None = None, severity: str = "error"
) -> dict[str, Any]:
    """An OperationOutcome with a single issue."""
    issue: dict[str, Any] = {"severity": severity, "code": code, "diagnostics": diagnostics}
    if expression:
        issue["expression"] = expression
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def fhir_path(fhir_type: str, element: str) -> str:
    """`subject` -> `Procedure.subject`: an issue expression in FHIRPath form (a path that
    already starts with the type, or with `Bundle`, is kept)."""
    head = element.split(".", 1)[0].split("[", 1)[0]
    if head in (fhir_type, "Bundle"):
        return element
    return f"{fhir_type}.{element}"


def element_path(expression: str) -> str:
    """`Procedure.subject` -> `subject`: the path inside the resource (for Bundle entries)."""
    head, _, rest = expression.partition(".")
    return rest if head[:1].isupper() and rest else expression


@contextmanager
def about_resource(fhir_type: str) -> Iterator[None]:
    """While a `fhir_type` body is checked and mapped, every FhirError raised names its
    element as `Procedure.subject`: the checks themselves (shared by several resources)
    only know the element's name."""
    try:
        yield
    except FhirError as error:
        if error.expression:
            error.expression = [fhir_path(fhir_type, item) for item in error.expression]
        raise


def names_elements(method: Method) -> Method:
    """Decorate a method of an object with a `fhir_type` (a resource mapping) so that the
    errors it raises name elements in FHIRPath form (`about_resource`)."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        with about_resource(self.fhir_type):
            return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]
