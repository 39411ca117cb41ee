"""Settings from CW_* environment variables, validated once at start-up."""

from __future__ import annotations

import json
import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Keys that appear in tutorials and .env samples; a service signed with one is forgeable.
KNOWN_WEAK_KEYS = {
    "secret", "changeme", "change-me", "changethis", "password", "jwt-secret", "supersecret",
    "your-secret-key", "secret-key", "development", "dev", "test", "cloudwizard",
}
MIN_KEY_LENGTH = 32


class ConfigError(RuntimeError):
    """Raised when the configuration would make the service unsafe or unusable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CW_", extra="ignore")

    env: Literal["production", "development", "test"] = "production"
    data_dir: Path = Field(default=Path(".cloudwizard"), description="Embedded default's state folder.")
    database_url: str | None = Field(default=None, description="SQLAlchemy async URL; unset = SQLite file.")
    redis_url: str | None = Field(default=None, description="Redis URL for jobs and rate limits; unset = in-process.")
    jwt_secret: str | None = Field(default=None, repr=False)
    jwt_issuer: str = "cloudwizard"
    jwt_audience: str = "cloudwizard-api"
    access_token_ttl_seconds: int = Field(default=900, ge=60, le=3600)
    refresh_token_ttl_seconds: int = Field(default=30 * 24 * 3600, ge=3600)
    invitation_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=600)
    scanner_principal_arn: str = Field(
        default="arn:aws:iam::111111111111:role/CloudWizardScanner",
        description="The IAM principal our scanner runs as; customer roles trust only this ARN.",
    )
    public_base_url: str = Field(default="http://127.0.0.1:8000", description="Where clients reach this API.")
    role_template_url: str | None = Field(
        default=None,
        description="Public S3 URL of cfn/cloudwizard-role.yaml for quick-create links (the CloudFormation console "
        "only loads templates from S3); unset = the copy this API serves.",
    )
    quick_create_region: str = "us-east-1"
    external_id_ttl_seconds: int = Field(default=48 * 3600, ge=600, description="Life of an unused External ID.")
    assume_role_duration_seconds: int = Field(default=900, ge=900, le=3600)
    reverify_interval_seconds: int = Field(default=6 * 3600, ge=300)
    scan_time_limit_seconds: int = Field(default=3600, ge=30, description="A scan running longer fails.")
    scan_stale_after_seconds: int = Field(
        default=300, ge=30, description="A running scan without a heartbeat this long is presumed dead and re-run.")
    scan_concurrency: int = Field(default=32, ge=1, le=256, description="AWS calls in flight per scan.")
    scan_per_service_concurrency: int = Field(default=8, ge=1, le=64)
    scan_results_retention_days: int = Field(
        default=400, ge=7,
        description="Per-finding results of a scan (what it said of each finding) are removed after this many "
        "days; the scan, its counts, the findings and their history stay. Each account's latest results are kept.")
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Origins of the SPA: comma-separated, or a JSON list.")
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    login_rate_limit: int = Field(default=10, ge=1, description="Attempts per window per address and per email.")
    login_rate_window_seconds: int = Field(default=300, ge=1)
    log_level: str = "INFO"
    log_json: bool = True

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, v: object) -> object:
        if isinstance(v, str):
            v = v.strip()
            if v.startswith("["):
                return json.loads(v)
            return [o.strip() for o in v.split(",") if o.strip()]
        return v

    @model_validator(mode="after")
    def _defaults(self) -> Settings:
        if self.database_url is None:
            self.database_url = f"sqlite+aiosqlite:///{(self.data_dir / 'cloudwizard.db').resolve()}"
        return self

    @property
    def uses_embedded_database(self) -> bool:
        return "CW_DATABASE_URL" not in os.environ and self.database_url.startswith("sqlite")

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def resolved_jwt_secret(self) -> str:
        """Return a signing key, refusing weak ones; the embedded default persists its own."""
        key = self.jwt_secret
        if key:
            weak = len(key) < MIN_KEY_LENGTH or key.lower() in KNOWN_WEAK_KEYS
            if weak and self.env == "production":
                raise ConfigError(
                    f"CW_JWT_SECRET is too weak: use at least {MIN_KEY_LENGTH} random characters "
                    "(for example: python -c 'import secrets; print(secrets.token_urlsafe(48))'), "
                    "or set CW_ENV=development for local experiments."
                )
            return key
        if self.uses_embedded_database or self.env != "production":
            return _persisted_key(self.data_dir / "jwt.key")
        raise ConfigError(
            "CW_JWT_SECRET is not set. A service with its own database must be given a signing key "
            "so that every replica verifies the same tokens."
        )


def _persisted_key(path: Path) -> str:
    """Generate once and keep a signing key for the single-machine default (mode 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        return path.read_text().strip()
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key


@lru_cache
def get_settings() -> Settings:
    return Settings()
