"""Settings read from the environment (and an optional `.env` file).

The variable names are part of the contract: deployments rely on them.
"""

from __future__ import annotations

import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024
DEFAULT_MAX_TRANSACTION_BYTES = 100 * 1024 * 1024


class Settings(BaseSettings):
    """Every knob of the server; unknown environment variables are ignored."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    database_url: str = Field("sqlite:///codoc.db", validation_alias="CODOC_DATABASE_URL")
    thesaurus_procedure: str = Field("Acte", validation_alias="THESAURUS_CODE_PROCEDURE")
    thesaurus_medication: str = Field("Prescription", validation_alias="THESAURUS_CODE_MEDICATION")
    thesaurus_diagnostic: str = Field("Diagnostic", validation_alias="THESAURUS_CODE_DIAGNOSTIC")
    thesaurus_observation: str = Field("Biologie", validation_alias="THESAURUS_CODE_OBSERVATION")
    thesaurus_phenotype: str = Field("Phenotypes", validation_alias="THESAURUS_CODE_PHENOTYPE")
    strict_codes: bool = Field(False, validation_alias="CODOC_STRICT_CODES")
    rate_limit_anonymous: str = Field("100/hour", validation_alias="CODOC_RATE_LIMIT_ANONYMOUS")
    rate_limit_authenticated: str = Field(
        "1000/hour", validation_alias="CODOC_RATE_LIMIT_AUTHENTICATED"
    )
    jwt_secret: str | None = Field(None, validation_alias="CODOC_JWT_SECRET")
    jwt_public_key: str | None = Field(None, validation_alias="CODOC_JWT_PUBLIC_KEY")
    jwt_jwks_file: str | None = Field(None, validation_alias="CODOC_JWT_JWKS_FILE")
    jwt_issuer: str | None = Field(None, validation_alias="CODOC_JWT_ISSUER")
    jwt_audience: str | None = Field(None, validation_alias="CODOC_JWT_AUDIENCE")
    cors_origins: str = Field("", validation_alias="CODOC_CORS_ORIGINS")
    max_body_bytes: int = Field(DEFAULT_MAX_BODY_BYTES, validation_alias="CODOC_MAX_BODY_BYTES")
    max_transaction_bytes: int = Field(
        DEFAULT_MAX_TRANSACTION_BYTES, validation_alias="CODOC_MAX_TRANSACTION_BYTES"
    )
    redis_url: str | None = Field(None, validation_alias="CODOC_REDIS_URL")
    access_log: bool = Field(True, validation_alias="CODOC_ACCESS_LOG")
    export_dir: str = Field(  # Bulk Data $export files; shared by every worker process
        default_factory=lambda: str(Path(tempfile.gettempdir()) / "codoc-exports"),
        validation_alias="CODOC_EXPORT_DIR",
    )
    # research warehouse (CONTRACT section 11): language of the clinical text
    text_language: Literal["french", "english"] = Field(
        "french", validation_alias="CODOC_TEXT_LANGUAGE"
    )

    @property
    def auth_enabled(self) -> bool:
        return bool(self.jwt_secret or self.jwt_public_key or self.jwt_jwks_file)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
