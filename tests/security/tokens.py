"""Minting test tokens: an HS256 secret and one RSA key pair (PEM and JWKS forms)."""

from __future__ import annotations

import json
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

SECRET = "test-secret-0123456789-0123456789-abcdef"
ISSUER = "https://idp.example.org"
AUDIENCE = "codoc-fhir"
PATIENT_BODY = {
    "resourceType": "Patient",
    "name": [{"family": "Martin", "given": ["Anne"]}],
    "gender": "female",
    "birthDate": "1970-01-01",
}


@lru_cache(maxsize=1)
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem() -> str:
    return (
        rsa_key()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def write_jwks(path: Path, kid: str = "key-1") -> Path:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key().public_key()))
    jwk.update(kid=kid, use="sig", alg="RS256")
    path.write_text(json.dumps({"keys": [jwk]}))
    return path


def claims(scope: str = "system/*.*", **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    values: dict[str, Any] = {
        "sub": "alice",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 3600,  # tokens minted at collection outlive a whole two-backend run
        "scope": scope,
    }
    values.update(extra)
    return {key: value for key, value in values.items() if value is not None}


def hs256(scope: str = "system/*.*", secret: str = SECRET, **extra: Any) -> str:
    return jwt.encode(claims(scope, **extra), secret, algorithm="HS256")


def rs256(scope: str = "system/*.*", kid: str | None = None, **extra: Any) -> str:
    headers = {"kid": kid} if kid else None
    return jwt.encode(claims(scope, **extra), rsa_key(), algorithm="RS256", headers=headers)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


AUTH_ENV = {
    "CODOC_JWT_SECRET": SECRET,
    "CODOC_JWT_ISSUER": ISSUER,
    "CODOC_JWT_AUDIENCE": AUDIENCE,
}
