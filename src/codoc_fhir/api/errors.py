"""Every error becomes an OperationOutcome here, in one place; never a stack trace."""

from __future__ import annotations

import logging

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from codoc_fhir.api.visibility import withheld
from codoc_fhir.fhir.errors import FhirError, operation_outcome
from codoc_fhir.fhir.responses import fhir_response
from codoc_fhir.warehouse.transactions import database_fault

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
    error = withheld(request, error)
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


async def _database_error(request: Request, error: Exception) -> Response:
    """A database failure that escaped the transaction runner: the same mapping it uses
    (409 conflict, 400 invalid, 503 transient), a 500 only for what is a server bug."""
    assert isinstance(error, DBAPIError)
    fault = database_fault(error)
    if fault is None:
        return await _unexpected(request, error)
    log.info("database refused %s %s: %s", request.method, request.url.path, type(error).__name__)
    return fhir_response(request, fault.outcome(), fault.status, fault.headers)


async def _unexpected(request: Request, error: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    outcome = operation_outcome("exception", "Internal server error")
    return fhir_response(request, outcome, 500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(FhirError, _fhir_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(Exception, _unexpected)
