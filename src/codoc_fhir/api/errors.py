"""Every error becomes an OperationOutcome here, in one place; never a stack trace."""

from __future__ import annotations

import logging

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from codoc_fhir.fhir.errors import FhirError, operation_outcome
from codoc_fhir.fhir.responses import fhir_response

log = logging.getLogger("codoc_fhir")

_HTTP_CODES = {
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    409: "conflict",
    413: "too-costly",
    415: "not-supported",
    429: "throttled",
}


async def _fhir_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, FhirError)
    return fhir_response(request, error.outcome(), error.status, error.headers)


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    messages = {
        404: f"No FHIR endpoint at {request.url.path}",
        405: f"Method {request.method} is not supported on {request.url.path}",
    }
    diagnostics = messages.get(error.status_code, str(error.detail))
    code = _HTTP_CODES.get(error.status_code, "invalid" if error.status_code < 500 else "exception")
    return fhir_response(
        request, operation_outcome(code, diagnostics), error.status_code, dict(error.headers or {})
    )


async def _validation_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    first = error.errors()[0] if error.errors() else {}
    where = ".".join(str(part) for part in first.get("loc", ()))
    diagnostics = f"Invalid request: {first.get('msg', 'bad input')} ({where})"
    return fhir_response(request, operation_outcome("invalid", diagnostics), 400)


async def _data_error(request: Request, error: Exception) -> Response:
    """A value the checks let through but the column refuses (too long, out of range)."""
    # Not the message: PostgreSQL quotes the refused value in it, and values come from bodies.
    state = getattr(getattr(error, "orig", None), "sqlstate", None)
    log.info("database refused a value on %s %s (%s)", request.method, request.url.path, state)
    diagnostics = "A value does not fit its warehouse column (too long or out of range)"
    return fhir_response(request, operation_outcome("invalid", diagnostics), 400)


async def _integrity_error(request: Request, error: Exception) -> Response:
    diagnostics = "The change conflicts with existing data (a duplicate or a dangling link)"
    return fhir_response(request, operation_outcome("conflict", diagnostics), 409)


QUERY_CANCELED = "57014"  # PostgreSQL's SQLSTATE for a statement cancelled by its timeout


def is_statement_timeout(error: Exception) -> bool:
    """Whether PostgreSQL cancelled the statement after CODOC_STATEMENT_TIMEOUT."""
    return getattr(getattr(error, "orig", None), "sqlstate", None) == QUERY_CANCELED


async def _statement_timeout(request: Request, error: Exception) -> Response:
    """503 `too-costly` for a statement that ran past CODOC_STATEMENT_TIMEOUT; other
    OperationalErrors go on to the generic handler."""
    if not is_statement_timeout(error):
        return await _unexpected(request, error)
    log.warning("statement timeout on %s %s", request.method, request.url.path)
    diagnostics = "The request needs more database time than the server allows; narrow it"
    return fhir_response(request, operation_outcome("too-costly", diagnostics), 503)


async def _unexpected(request: Request, error: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    outcome = operation_outcome("exception", "Internal server error")
    return fhir_response(request, outcome, 500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(FhirError, _fhir_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(DataError, _data_error)
    app.add_exception_handler(IntegrityError, _integrity_error)
    app.add_exception_handler(OperationalError, _statement_timeout)
    app.add_exception_handler(Exception, _unexpected)
