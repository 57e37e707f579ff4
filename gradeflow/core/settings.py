"""The one typed settings object. Nothing else reads the environment."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# What every API key starts with (gradeflow/access/service/auth.py mints them; settings must not import services).
API_KEY_PREFIX = "gfk_"


class S3Settings(BaseSettings):
    """Object storage (any S3 API). Read from GRADEFLOW_S3_*."""

    model_config = SettingsConfigDict(env_prefix="GRADEFLOW_S3_", extra="ignore")

    endpoint_url: str | None = None
    access_key: SecretStr = SecretStr("")
    secret_key: SecretStr = SecretStr("")
    bucket: str = "gradeflow"
    region: str = "us-east-1"


class SmtpSettings(BaseSettings):
    """Outgoing e-mail. Read from GRADEFLOW_SMTP_*."""

    model_config = SettingsConfigDict(env_prefix="GRADEFLOW_SMTP_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 25
    security: Literal["none", "starttls", "tls"] = "none"
    username: str | None = None
    password: SecretStr | None = None
    sender: str = "Gradeflow <results@gradeflow.invalid>"
    timeout_seconds: float = 30
    # A message claimed this long ago and not marked sent was interrupted (worker lost): failed, never resent.
    lease_seconds: int = Field(default=600, ge=1)


class ReportSettings(BaseModel):
    """Report files and their download links. Read from GRADEFLOW_REPORTS__*."""

    link_seconds: int = Field(default=300, ge=1, le=300, description="How long a download link works (at most 5 min).")
    retention_days: int = Field(default=30, ge=1)
    # A running report whose worker has not reported progress for this long was abandoned (worker
    # lost): it is tried again by another worker, up to 3 tries, then failed.
    lease_seconds: int = Field(default=120, ge=1)
    # The report's page in the LMS, for the e-mail sent when a report is ready ({course}, {report}).
    page_url_template: str = "https://lms.invalid/courses/{course}/reports/{report}"
    # A school's own PDF label catalogues (`<language>.json`, e.g. `de.json`, `fr-CA.json`), added to the
    # built-in ones (gradeflow/reports/labels/*.json) or overriding their labels; see gradeflow.reports.labels.
    labels_dir: Path | None = None


class WebhookSettings(BaseModel):
    """Webhook delivery. Read from GRADEFLOW_WEBHOOKS__*."""

    # Networks private/loopback targets may be in (e.g. ["127.0.0.0/8", "::1/128"]); none by default.
    allow_private: list[str] = Field(default_factory=list)
    timeout_seconds: float = 10
    rotation_grace_hours: int = Field(default=24, ge=0, description="How long a replaced secret keeps signing.")
    # A delivery whose worker died mid-send is sent again after this (receivers de-duplicate on webhook-id).
    lease_seconds: int = Field(default=120, ge=1)
    # Ports that are never targets on the private networks `allow_private` opens (`make run` lists the
    # stack's own: the API, PostgreSQL, Redis, SeaweedFS, the mail sink, the worker's metrics).
    deny_ports: list[int] = Field(default_factory=list)


class Limits(BaseModel):
    max_body_bytes: int = 16 * 1024 * 1024
    # All request header fields together (names, values, separators); more is answered 431 before any work.
    max_header_bytes: int = Field(default=32 * 1024, ge=1024)
    # A bearer credential longer than this is refused (401) without being parsed.
    max_credential_bytes: int = Field(default=8 * 1024, ge=256)
    max_batch_rows: int = 10_000
    # POST /v1/grading/evaluate: learners x assessments (or score rows, if more) one request may grade
    # (413 above): a request at an API key's limit holds a core for a few seconds; users get less.
    evaluate_max_cells: int = Field(default=1_000_000, ge=1)
    evaluate_max_cells_user: int = Field(default=100_000, ge=1)
    max_page_size: int = 1000
    idempotency_ttl_hours: int = 24


class Settings(BaseSettings):
    """Everything configurable, from GRADEFLOW_* variables."""

    # Errors never echo a value: a mistyped setting may still be a secret.
    model_config = SettingsConfigDict(
        env_prefix="GRADEFLOW_", env_nested_delimiter="__", extra="ignore", hide_input_in_errors=True
    )

    database_url: SecretStr = SecretStr("postgresql+asyncpg://postgres@127.0.0.1:5432/gradeflow")
    db_pool_size: int = 20
    db_max_overflow: int = 10
    redis_url: str = "redis://127.0.0.1:6379/0"
    s3: S3Settings = Field(default_factory=S3Settings)
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    reports: ReportSettings = Field(default_factory=ReportSettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    # Where a learner reads their results in the LMS; {course} and {learner} are filled in (URL-quoted).
    results_url_template: str = "https://lms.invalid/courses/{course}/results"
    # The learner's documents page in the LMS (their reports and certificates), the one link of a
    # candidate mailing's e-mail; {course} and {learner} are filled in (URL-quoted).
    documents_url_template: str = "https://lms.invalid/courses/{course}/documents"
    # How long a report sent to a candidate stays downloadable (its file is deleted after).
    documents_retention_days: int = Field(default=365, ge=1)
    limits: Limits = Field(default_factory=Limits)
    # Per API key (or LMS user), shared by all replicas through Redis; limits' syntax, "" for none.
    rate_limit: str = "6000/minute;300/second"
    # Requests one API process answers at once; more get 503 with Retry-After instead of queueing.
    max_in_flight: int = Field(default=256, ge=1)
    # How long a request waits for a free database connection before it is answered 503.
    db_pool_timeout_seconds: float = Field(default=10, gt=0)
    # The worker's Prometheus endpoint (0: none), on this interface only (loopback unless set).
    worker_metrics_port: int = Field(default=9464, ge=0, le=65535)
    worker_metrics_host: str = "127.0.0.1"
    # The API's own address as clients reach it (e.g. "https://grades.example.edu"), for the absolute URLs LTI
    # tools are given (token URL, line items, memberships); unset: the address each request was sent to.
    public_url: str | None = Field(default=None, pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$")
    log_level: str = "INFO"
    bootstrap_api_key: SecretStr | None = None
    bootstrap_organization: str = "default"
    token_leeway_seconds: int = 30
    # A user token whose `exp` is further ahead than this (plus the leeway) is refused.
    token_max_lifetime_seconds: int = Field(default=86_400, ge=60)

    @field_validator("bootstrap_api_key")
    @classmethod
    def _bootstrap_key_is_an_api_key(cls, value: SecretStr | None) -> SecretStr | None:
        return check_bootstrap_key(value)

    @property
    def async_database_url(self) -> str:
        return to_async_url(self.database_url.get_secret_value())


def check_bootstrap_key(value: SecretStr | None) -> SecretStr | None:
    """Refuse a bootstrap key that could never authenticate (only `gfk_...` credentials are looked up
    as API keys) or is too short for an admin key: at start-up, with a message saying so."""
    secret = None if value is None else value.get_secret_value()
    if secret is not None and (not secret.startswith(API_KEY_PREFIX) or len(secret) < 32):
        raise ValueError(
            f"GRADEFLOW_BOOTSTRAP_API_KEY must start with {API_KEY_PREFIX!r} (only such credentials are API keys:"
            " any other value could never authenticate) and be at least 32 characters long (it is an admin key),"
            " like the keys `gradeflow create-key` prints"
        )
    return value


def to_async_url(url: str) -> str:
    """Accept plain postgresql:// URLs and point SQLAlchemy at asyncpg."""
    for prefix in ("postgresql://", "postgres://", "postgresql+psycopg://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    return url


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
