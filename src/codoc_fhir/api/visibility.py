"""The caller of a request, for the interaction layer (interactions/caller.py).

The authorization sequence (scopes, patient confinement, what an answer may contain) is
the Caller's and is written there only; here a request is turned into its Caller, and
`Visibility` and `withheld` keep their old spelling for the HTTP modules that still use
them ($everything, $export, the error handlers).
"""

from __future__ import annotations

from starlette.requests import Request

from codoc_fhir.api.origin import public_base
from codoc_fhir.fhir.errors import FhirError
from codoc_fhir.interactions.caller import READ, Caller

__all__ = ["READ", "Visibility", "caller_of", "withheld"]


def caller_of(request: Request) -> Caller:
    """The request's caller: the token's principal (None with auth off), the public FHIR
    base, and the patient the route's scope check confined it to."""
    return Caller(
        getattr(request.state, "principal", None),
        public_base(request),
        getattr(request.state, "patient_restriction", None),
    )


class Visibility(Caller):
    """What one caller may receive (a Caller built from the principal alone)."""

    @classmethod
    def of(cls, request: Request) -> Visibility:
        return cls(getattr(request.state, "principal", None))


def withheld(request: Request, error: FhirError) -> FhirError:
    """`error` as the request's caller may see it (Caller.withheld)."""
    return Caller(None, "", getattr(request.state, "patient_restriction", None)).withheld(error)
