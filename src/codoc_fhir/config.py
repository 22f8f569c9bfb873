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

# `serve --root-path`, handed to the gunicorn workers (api/http_protocol.Worker), and its default.
ROOT_PATH_VARIABLE = "CODOC_ROOT_PATH"
DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024
DEFAULT_MAX_TRANSACTION_BYTES = 100 * 1024 * 1024
DEFAULT_MAX_PAGE_BYTES = 20 * 1024 * 1024


class Settings(BaseSettings):
    """Every knob of the server; unknown environment variables are ignored."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    database_url: str = Field("sqlite:///codoc.db", validation_alias="CODOC_DATABASE_URL")
    thesaurus_procedure: str = Field("Acte", validation_alias="THESAURUS_CODE_PROCEDURE")
    thesaurus_medication: str = Field("Prescription", validation_alias="THESAURUS_CODE_MEDICATION")
    thesaurus_diagnostic: str = Field("Diagnostic", validation_alias="THESAURUS_CODE_DIAGNOSTIC")
    thesaurus_observation: str = Field("Biologie", validation_alias="THESAURUS_CODE_OBSERVATION")
    thesaurus_condition: str = Field("CIM10", validation_alias="THESAURUS_CODE_CONDITION")
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
    # where the rate-limit counters live (api/ratelimit.py); unset: redis with a Redis URL,
    # else local (a memory-mapped file shared by the processes of this machine)
    rate_limit_store: Literal["database", "local", "redis"] | None = Field(
        None, validation_alias="CODOC_RATE_LIMIT_STORE"
    )
    rate_limit_dir: str | None = Field(None, validation_alias="CODOC_RATE_LIMIT_DIR")
    access_log: bool = Field(True, validation_alias="CODOC_ACCESS_LOG")
    # PostgreSQL reads by id and searches on an async pool, off the thread pool, and plain
    # creates without the route table (api/fast_read.py, fast_search.py, fast_create.py);
    # off: every request takes the generic route (for A/B measurements and comparisons)
    fast_read: bool = Field(True, validation_alias="CODOC_FAST_READ")
    export_dir: str = Field(  # Bulk Data $export files; shared by every worker process
        default_factory=lambda: str(Path(tempfile.gettempdir()) / "codoc-exports"),
        validation_alias="CODOC_EXPORT_DIR",
    )
    # SMART discovery (/.well-known/smart-configuration): the identity provider's endpoints
    smart_authorize_url: str | None = Field(None, validation_alias="CODOC_SMART_AUTHORIZE_URL")
    smart_token_url: str | None = Field(None, validation_alias="CODOC_SMART_TOKEN_URL")

    # --- integrity limits (CONTRACT section 8, docs/RELIABILITY.md) -----------------------
    max_search_values: int = Field(100, validation_alias="CODOC_MAX_SEARCH_VALUES")
    max_page_bytes: int = Field(DEFAULT_MAX_PAGE_BYTES, validation_alias="CODOC_MAX_PAGE_BYTES")
    statement_timeout: float = Field(30, validation_alias="CODOC_STATEMENT_TIMEOUT")  # seconds
    request_timeout: float = Field(60, validation_alias="CODOC_REQUEST_TIMEOUT")  # seconds
    jwt_max_lifetime: int = Field(24 * 3600, validation_alias="CODOC_JWT_MAX_LIFETIME")  # s
    cursor_key: str | None = Field(None, validation_alias="CODOC_CURSOR_KEY")
    base_url: str | None = Field(None, validation_alias="CODOC_BASE_URL")
    allowed_hosts: str = Field("", validation_alias="CODOC_ALLOWED_HOSTS")  # "": the defaults
    trusted_proxies: str = Field("", validation_alias="CODOC_TRUSTED_PROXIES")
    bind_host: str | None = Field(None, validation_alias="CODOC_HOST")  # set by `serve --host`

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
