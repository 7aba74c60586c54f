"""One Settings object for paths and defaults (pydantic-settings, ``RISKENGINE_`` env prefix).

Nested sections use ``__`` in environment variables, e.g. ``RISKENGINE_MLFLOW__TRACKING_URI``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class MlflowSettings(BaseModel):
    """Where MLflow keeps runs and the model registry."""

    # A local store under ./mlruns by default; a bureau points this at its MLflow server.
    tracking_uri: str | None = None
    registry_uri: str | None = None
    experiment: str = "riskengine-credit"
    model_name: str = "riskengine-credit"


class ModelSettings(BaseModel):
    """Defaults for labels and training."""

    horizon_days: int = 365
    snapshot_months: int = 12
    seed: int = 42


class GradeSettings(BaseModel):
    """Score bands and regrading hysteresis (see models/grading docs for the rationale)."""

    # Lower score edges of grades B, C, D on the 0-1000 scale.
    band_edges: tuple[int, int, int] = (450, 620, 750)
    hysteresis: int = 20


class ServiceSettings(BaseModel):
    """The HTTP service (`riskengine serve`, issue 6): where it reads features, and its limits."""

    # The lake that what-if scoring by enterprise id builds features from (None: scoring by id is off).
    lake_path: Path | None = None
    max_batch: int = Field(default=1000, gt=0, description="rows per POST /v1/score; more answers 413")
    page_size: int = Field(default=100, gt=0, description="default page size of listings")
    max_page_size: int = Field(default=10_000, gt=0)
    failed_auth_per_address: str = Field(
        default="20/minute", description="failed keys a client address may send (limits notation); then 429")
    failed_auth_per_key: str = Field(
        default="10/minute", description="failed attempts on one key id before further failures get 429")
    audit_sync: Literal["fdatasync", "write"] = Field(
        default="fdatasync",
        description="before answering, each audit row is flushed to disk (fdatasync: survives a power "
                    "loss) or only written to the kernel (write: survives kill -9 of the server)")
    max_body_bytes: int = Field(
        default=4 * 1024 * 1024, gt=0,
        description="largest request body (a full what-if batch is ~2 MB); more answers 413")
    max_override_days: int = Field(default=366, gt=0, description="longest allowed override")
    audit_flush_seconds: float = Field(default=1.0, gt=0, description="audit rows are written in batches")
    key_refresh_seconds: float = Field(default=10.0, gt=0, description="CLI key changes reach the server")
    store_lock_timeout: float = Field(default=30.0, gt=0, description="wait for another process's lock")
    reload_check_seconds: float = Field(
        default=30.0, ge=0,
        description="how often the server checks the store for new grades or plans and reloads (0: never)")


class UiSettings(BaseModel):
    """The web pages under /ui/ (issue 15): sessions and their cookies."""

    session_idle_minutes: float = Field(default=30.0, gt=0, description="a session unused this long ends")
    session_hours: float = Field(default=10.0, gt=0, description="a session ends this long after sign-in")
    cookie_secure: bool = Field(default=False, description="send cookies only over HTTPS (set behind TLS)")
    csrf_secret: str | None = Field(
        default=None, description="signs CSRF tokens; None: a random secret per server process")
    touch_seconds: float = Field(
        default=60.0, ge=0, description="how often a session's last use is written to the store")
    page_size: int = Field(default=50, gt=0, description="rows per page of a listing")
    max_form_bytes: int = Field(default=65_536, gt=0, description="largest form post a page accepts")


class ShareSettings(BaseModel):
    """Pushing credit records to the credit platform (`riskengine share`, CONTRACT §9)."""

    batch_size: int = Field(default=500, gt=0, description="records per batch file or POST")
    max_attempts: int = Field(default=4, gt=0, description="tries per batch in one run")
    backoff_seconds: float = Field(default=0.5, ge=0, description="first wait between tries (doubles)")
    backoff_max_seconds: float = Field(default=30.0, ge=0)
    timeout_seconds: float = Field(default=30.0, gt=0, description="one HTTP request")
    dead_after_runs: int = Field(default=3, gt=0, description="failed runs before a batch is a dead letter")
    # HMAC-SHA256 key shared with the platform (RISKENGINE_SHARE__SECRET); required for HTTP targets.
    secret: SecretStr | None = None


class WebhookSettings(BaseModel):
    """Pushing warnings to subscribed bureau systems (issue 14)."""

    attempts: int = Field(default=4, ge=1, description="tries per warning and subscription")
    backoff_seconds: float = Field(default=1.0, ge=0, description="first retry waits this long, then doubles")
    backoff_max_seconds: float = Field(default=30.0, ge=0)
    timeout_seconds: float = Field(default=10.0, gt=0)


class Settings(BaseSettings):
    """Paths and defaults of the engine; every command reads this once."""

    model_config = SettingsConfigDict(env_prefix="RISKENGINE_", env_nested_delimiter="__")

    home: Path = Field(default_factory=Path.cwd, description="working folder for mlruns/ and the store")
    store_path: Path | None = None
    policy_path: Path | None = None
    id_scheme: str = "uscc"
    mlflow: MlflowSettings = MlflowSettings()
    model: ModelSettings = ModelSettings()
    grades: GradeSettings = GradeSettings()
    service: ServiceSettings = ServiceSettings()
    ui: UiSettings = UiSettings()
    share: ShareSettings = ShareSettings()
    webhooks: WebhookSettings = WebhookSettings()

    @property
    def store_file(self) -> Path:
        """The serving store (DuckDB) file."""
        return self.store_path or (self.home / "riskengine.duckdb")

    @property
    def mlruns_dir(self) -> Path:
        return self.home / "mlruns"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read from the environment once)."""
    return Settings()
