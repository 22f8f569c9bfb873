"""Bearer-token authentication (JWT) and SMART-style scope enforcement.

Auth is off unless one of CODOC_JWT_SECRET (HS256), CODOC_JWT_PUBLIC_KEY (RS256, PEM text)
or CODOC_JWT_JWKS_FILE (RS256, a JWKS file) is set. When on, every request except the
public ones (`/metadata`, the API docs) needs `Authorization: Bearer <JWT>`; the token's
`scope` claim then decides, per resource type and interaction, what the caller may do:

- contexts `system/`, `user/`, `patient/`; resource `*` or a FHIR type;
- SMART v1 permissions `read`, `write`, `*`; v2 letters `c r u d s` (`.rs`, `.cud`, ...).

A grant that only comes from `patient/` scopes restricts the caller to the patient named by
the token's `patient` claim (or `fhirUser: Patient/<id>`).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import orjson
from sqlalchemy import Connection
from starlette.requests import Request

from codoc_fhir.config import Settings
from codoc_fhir.fhir.errors import FhirError, Forbidden
from codoc_fhir.fhir.references import key_number
from codoc_fhir.interactions.caller import Caller

Scope = dict[str, Any]
__all__ = ["Forbidden", "Principal", "Unauthorized", "authorize", "check_patient"]

PUBLIC_PATHS = ("/metadata", "/docs", "/openapi.json")
# The letters of a SMART v2 permission each FHIR interaction needs.
INTERACTION_LETTER = {
    "read": "r",
    "vread": "r",
    "history": "r",
    "search": "s",
    "create": "c",
    "update": "u",
    "patch": "u",
    "delete": "d",
}
V1_PERMISSIONS = {"read": "rs", "write": "cud", "*": "cruds"}
_SCOPE = re.compile(r"^(system|user|patient)/([A-Za-z*]+)\.([a-z*]+)(\?.*)?$")


class Unauthorized(FhirError):
    status, code = 401, "login"


# --- scopes --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Grant:
    """One parsed scope: context (system/user/patient), resource type or `*`, letters."""

    context: str
    resource: str
    letters: str

    def allows(self, fhir_type: str, interaction: str) -> bool:
        letter = INTERACTION_LETTER.get(interaction, "c")
        return self.resource in ("*", fhir_type) and letter in self.letters


def parse_scope(text: str) -> Grant | None:
    """A SMART scope (`patient/Procedure.read`, `user/*.cud`) as a Grant; None if not one."""
    match = _SCOPE.match(text.strip())
    if match is None:
        return None
    context, resource, permission = match.group(1), match.group(2), match.group(3)
    if permission in V1_PERMISSIONS:
        return Grant(context, resource, V1_PERMISSIONS[permission])
    if re.fullmatch(r"c?r?u?d?s?", permission):
        return Grant(context, resource, permission)
    return None


def parse_scopes(claim: Any) -> list[Grant]:
    """The grants in a `scope` claim (space separated string, or a list of strings)."""
    items = claim.split() if isinstance(claim, str) else claim if isinstance(claim, list) else []
    return [grant for grant in (parse_scope(str(item)) for item in items) if grant is not None]


@dataclass
class Principal:
    """The authenticated caller: subject, grants and (for patient scopes) the patient."""

    subject: str
    grants: list[Grant] = field(default_factory=list)
    patient: str | None = None

    def access(self, fhir_type: str, interaction: str) -> int | None:
        """None for unrestricted access, else the patient_num the caller is confined to.

        Raises Forbidden when no scope grants the interaction.
        """
        granting = [grant for grant in self.grants if grant.allows(fhir_type, interaction)]
        if not granting:
            raise Forbidden(
                f"The token's scopes do not allow {interaction} on {fhir_type}",
            )
        if any(grant.context != "patient" for grant in granting):
            return None
        patient = key_number(self.patient) if self.patient is not None else None
        if patient is None:
            raise Forbidden("A patient-scoped token must name its patient (patient claim)")
        return patient


def patient_of_claims(claims: dict[str, Any]) -> str | None:
    """The patient a token is about: `patient` claim, else `fhirUser: Patient/<id>`."""
    if claims.get("patient") is not None:
        return str(claims["patient"])
    fhir_user = str(claims.get("fhirUser") or "")
    match = re.search(r"(?:^|/)Patient/([^/]+)$", fhir_user)
    return match.group(1) if match else None


# --- token verification --------------------------------------------------------------------


class TokenVerifier:
    """Checks signature, expiry and (when configured) issuer and audience of a JWT, then
    the claims PyJWT leaves alone: numeric times, a bounded lifetime, a non-empty subject."""

    def __init__(self, settings: Settings) -> None:
        self.max_lifetime = settings.jwt_max_lifetime
        self.issuer = settings.jwt_issuer
        self.audience = settings.jwt_audience
        self.keys: dict[str | None, Any] = {}
        if settings.jwt_secret:
            self.algorithms = ["HS256"]
            self.keys[None] = settings.jwt_secret
        elif settings.jwt_public_key:
            self.algorithms = ["RS256"]
            pem = settings.jwt_public_key.replace("\\n", "\n").strip()
            self.keys[None] = _load_pem(pem)
        elif settings.jwt_jwks_file:
            self.algorithms = ["RS256"]
            keyset = jwt.PyJWKSet.from_json(Path(settings.jwt_jwks_file).read_text("utf-8"))
            for key in keyset.keys:
                self.keys[key.key_id] = key.key
        else:
            raise ValueError("auth is off: no secret, public key or JWKS configured")

    def verify(self, token: str) -> Principal:
        """The principal of a valid token; Unauthorized with the reason otherwise."""
        try:
            key = self._key_for(token)
            claims = jwt.decode(
                token,
                key,
                algorithms=self.algorithms,
                issuer=self.issuer,
                audience=self.audience,
                options={
                    "require": ["exp", "sub"],
                    "verify_aud": self.audience is not None,
                },
                leeway=30,
            )
        except jwt.ExpiredSignatureError as error:
            raise _invalid_token("The token has expired") from error
        except jwt.ImmatureSignatureError as error:
            raise _invalid_token("The token is not valid yet (nbf or iat in the future)") from error
        except jwt.InvalidAudienceError as error:
            raise _invalid_token("The token is not meant for this server (audience)") from error
        except jwt.InvalidIssuerError as error:
            raise _invalid_token("The token was issued by an untrusted issuer") from error
        except jwt.MissingRequiredClaimError as error:
            raise _invalid_token(f"The token lacks the {error.claim!r} claim") from error
        except jwt.PyJWTError as error:
            raise _invalid_token("The token is invalid (bad signature or format)") from error
        check_claims(claims, self.max_lifetime)
        return Principal(
            subject=str(claims["sub"])[:200],
            grants=parse_scopes(claims.get("scope", claims.get("scp"))),
            patient=patient_of_claims(claims),
        )

    def _key_for(self, token: str) -> Any:
        if None in self.keys:
            return self.keys[None]
        kid = jwt.get_unverified_header(token).get("kid")
        if kid in self.keys:
            return self.keys[kid]
        if kid is None and len(self.keys) == 1:
            return next(iter(self.keys.values()))
        raise jwt.InvalidKeyError("no key in the JWKS matches the token's kid")


TIME_CLAIMS = ("exp", "nbf", "iat")


def check_claims(claims: dict[str, Any], max_lifetime: int, now: float | None = None) -> None:
    """401 for what a signature does not make acceptable.

    PyJWT converts `"exp": "99999999999"` to a number: times must be JSON numbers here.
    A token living longer than CODOC_JWT_MAX_LIFETIME (exp - iat, or exp - now without
    iat) is refused: a leaked long-lived token would be valid for years. An empty subject
    would make every such caller one anonymous-looking user.
    """
    for name in TIME_CLAIMS:
        value = claims.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise _invalid_token(f"The token's {name!r} claim must be a number")
    start = claims.get("iat")
    lifetime = claims["exp"] - (start if start is not None else (now or time.time()))
    if lifetime > max_lifetime:
        raise _invalid_token(
            f"The token lives longer than the {max_lifetime} s this server accepts"
        )
    if not str(claims.get("sub") or "").strip():
        raise _invalid_token("The token's 'sub' claim is empty")


def _load_pem(pem: str) -> Any:
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    return load_pem_public_key(pem.encode())


def _invalid_token(reason: str) -> Unauthorized:
    header = f'Bearer realm="codoc-fhir", error="invalid_token", error_description="{reason}"'
    return Unauthorized(reason, headers={"WWW-Authenticate": header})


def missing_token() -> Unauthorized:
    return Unauthorized(
        "Authentication required: send Authorization: Bearer <token>",
        headers={"WWW-Authenticate": 'Bearer realm="codoc-fhir"'},
    )


# --- middleware ----------------------------------------------------------------------------


def is_public(path: str) -> bool:
    """Paths answered without a token: the CapabilityStatement, SMART discovery, the docs."""
    bare = path.rstrip("/")
    if bare.endswith("/.well-known/smart-configuration"):
        return True
    return bare.endswith("/metadata") or any(
        bare == prefix or bare.startswith(prefix + "/") for prefix in PUBLIC_PATHS[1:]
    )


async def send_error(
    send: Any,
    error: FhirError,
    *,
    media: bytes = b"application/fhir+json",
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """`error` as its OperationOutcome, with its headers (and `extra`), in `media`."""
    body = orjson.dumps(error.outcome())
    headers = [
        (b"content-type", media),
        (b"content-length", str(len(body)).encode()),
        *((name.lower().encode(), value.encode()) for name, value in error.headers.items()),
        *(extra or ()),
    ]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# --- enforcement, called by the route handlers ---------------------------------------------


def authorize(request: Request, fhir_type: str, interaction: str) -> None:
    """Check the caller may do `interaction` on `fhir_type` (403 otherwise).

    With auth off this does nothing. A grant coming only from patient scopes sets
    `request.state.patient_restriction` to the token's patient_num: the search layer
    restricts results to it and `check_patient` checks single rows against it.
    """
    principal = getattr(request.state, "principal", None)
    if principal is None:
        return
    request.state.patient_restriction = principal.access(fhir_type, interaction)


def check_patient(
    request: Request, conn: Connection, kind: Any, num: int, *, write: bool, created: bool = False
) -> None:
    """Under a patient-scoped token, the row `num` of `kind` must be the token's patient's
    (Caller.check_owner, for the routes that do not go through the interaction layer)."""
    caller = Caller(None, "", getattr(request.state, "patient_restriction", None))
    caller.check_owner(conn, kind, num, write=write, created=created)
