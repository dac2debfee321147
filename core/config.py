"""Typed settings read once from the environment (AIGC_*), validated at start-up."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict

from core.errors import ConfigError

ENV_PREFIX = "AIGC_"

# Placeholder secrets that must never run in production.
_PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "secret", "dev", "development"}


def _read_or_create_secret(path: Path) -> str:
    """Development secret kept beside the data so sessions survive a restart."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        return path.read_text().strip()
    value = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    return value


class _MappingEnvSource(EnvSettingsSource):
    """pydantic-settings' environment source (prefix, aliases, empty values ignored) over a given
    mapping instead of os.environ, so a caller (a test) can hand Settings an environment of its own.
    Overrides the same hook the library's own .env source does."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]):
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {(k if self.case_sensitive else k.lower()): v for k, v in self._environ.items()
                if not (self.env_ignore_empty and v == "")}


class Settings(BaseSettings):
    """Every knob of the platform. Each field is read from AIGC_{NAME} (see `env_var`); an empty
    value means the default. Fields left blank here are derived from others when read."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_ignore_empty=True, frozen=True,
                                      extra="ignore", validate_default=True)

    # Declared first: the fields below are derived from or checked against these two.
    env: Literal["development", "production"] = Field(
        "development", description="production refuses a missing or placeholder AIGC_SECRET_KEY")
    data_dir: Path = Field(Path(".aigc"), description="embedded Redis data, local artifacts, dev secrets")
    redis_url_env: str | None = Field(
        None, validation_alias="AIGC_REDIS_URL", description="external Redis; unset means the embedded one")
    storage_url: str = Field(
        "", description="file:///dir or s3://bucket/prefix; blank is file://{data_dir}/artifacts")
    s3_endpoint_url: str | None = Field(None, description="MinIO or any S3-compatible endpoint")
    s3_public_endpoint_url: str | None = Field(None, description="the S3 host put in download links")
    s3_region: str = Field("us-east-1", validation_alias=AliasChoices("AIGC_S3_REGION", "AWS_DEFAULT_REGION"),
                           description="region for S3 requests (else AWS_DEFAULT_REGION)")
    secret_key: str = Field("", repr=False, description="signs sessions and local URLs; "
                                                        "generated (and kept in data_dir) in development")
    models_dir: Path = Field(None, description="local model directories by name; blank is {data_dir}/models")
    public_url: str = Field("http://127.0.0.1:8000", description="base of links the server hands out")
    max_request_bytes: int = Field(1 << 20, ge=1024, description="larger bodies get 413")
    max_upload_bytes: int = Field(50 << 20, ge=1024, description="larger uploads get 413")
    max_new_tokens: int = Field(1024, ge=1, description="upper bound for input.max_new_tokens")
    max_choices: int = Field(8, ge=1, description="upper bound for input.n")
    max_prompt_chars: int = Field(16000, ge=1, description="upper bound for the prompt's length")
    max_campaign_rows: int = Field(100_000, ge=1, description="rows in one campaign")
    sync_timeout_s: int = Field(60, ge=1, description="POST /v1/completions waits this long, then 504")
    lease_ttl_s: int = Field(30, ge=2, description="a running job's lease; the heartbeat renews it")
    visibility_timeout_s: int = Field(6 * 3600, ge=5, description="above the longest task")
    max_attempts: int = Field(3, ge=1, description="a job that keeps killing workers fails after this")
    reaper_interval_s: int = Field(10, ge=1, description="how often workers look for orphaned jobs")
    model_cache_size: int = Field(2, ge=1, description="loaded models kept per worker process")
    torch_threads: int = Field(0, ge=0, description="0 = CPUs divided by worker concurrency")
    worker_concurrency: int = Field(1, ge=1, description="processes per worker")
    task_events: bool = Field(True, description="workers send Celery task events (what Flower shows)")
    generate_batch_jobs: int = Field(16, ge=1, description="queued text or gan.sample jobs one claim takes")
    kv_cache_bytes: int = Field(4 << 30, ge=1 << 20, description="key/value cache one worker's engine holds per "
                                                                 "model; more requests wait for room")
    presign_ttl_s: int = Field(300, ge=10, description="lifetime of artifact download links")
    # Per-caller limits (0 turns one off): a 429 with Retry-After beyond them.
    rate_limit_per_minute: int = Field(3000, ge=0, description="API requests per key per minute")
    max_streams_per_key: int = Field(64, ge=0, description="streaming responses open at once per key")
    max_open_jobs: int = Field(1000, ge=0, description="queued and running jobs per owner")
    webhook_allow_private: bool = Field(False, description="let webhook URLs reach loopback or private addresses")
    webhook_progress_every_s: float = Field(15, gt=0, description="at most one job.progress webhook per job this often")
    log_format: Literal["text", "json"] = Field("text", description="json: one JSON object per log line")
    metrics_token: str = Field("", repr=False, description="bearer token a Prometheus scrape of /metrics must send ('' = open)")
    allow_hub_downloads: bool = Field(False, description="fetch Hugging Face ids that are not cached")
    allow_volatile_redis: bool = Field(False, description="run on Redis without AOF")
    api_url: str = Field(None, description="where the CLI sends requests; blank is public_url")
    api_key: str | None = Field(None, repr=False, description="the CLI's key")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings from `environ` (default: the process environment), and nothing else; a bad
        value is a ConfigError naming its variable."""
        source = _MappingEnvSource(cls, os.environ if environ is None else environ)
        try:
            return cls(**source())
        except ValidationError as exc:
            raise _config_error(exc) from None

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                   file_secret_settings):
        # from_env reads the environment (or the mapping it is given) and passes the values in.
        return (init_settings,)

    @classmethod
    def env_var(cls, name: str) -> str:
        """The environment variable a field is read from (the first, where there are several)."""
        alias = cls.model_fields[name].validation_alias
        if isinstance(alias, AliasChoices):
            return str(alias.choices[0])
        return alias or ENV_PREFIX + name.upper()

    # -- derived and cross-checked values (fields are validated in the order declared) ------
    @field_validator("data_dir")
    @classmethod
    def _absolute_data_dir(cls, value: Path) -> Path:
        return value.resolve()

    @field_validator("storage_url")
    @classmethod
    def _storage_url(cls, value: str, info: ValidationInfo) -> str:
        if not value and "data_dir" in info.data:
            value = (info.data["data_dir"] / "artifacts").as_uri()
        if not value.startswith(("file://", "s3://")):
            raise ValueError("must start with file:// or s3://")
        return value

    @field_validator("secret_key")
    @classmethod
    def _secret_key(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("env") == "production":
            if value.lower() in _PLACEHOLDER_SECRETS or len(value) < 16:
                raise ValueError("must be a real secret of 16+ characters in production")
        elif not value and "data_dir" in info.data:
            value = _read_or_create_secret(info.data["data_dir"] / "secret_key")
        return value

    @field_validator("models_dir", mode="before")
    @classmethod
    def _models_dir(cls, value, info: ValidationInfo):
        return Path(value or Path(info.data.get("data_dir", ".aigc")) / "models").resolve()

    @field_validator("public_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("api_url", mode="before")
    @classmethod
    def _api_url(cls, value, info: ValidationInfo):
        return (value or info.data.get("public_url", "")).rstrip("/")

    # -- what the settings imply ------------------------------------------------------------
    @property
    def embedded_redis_url_file(self) -> Path:
        return self.data_dir / "redis.url"

    @property
    def redis_url(self) -> str:
        """The external URL if set, else the one the running embedded Redis wrote down."""
        if self.redis_url_env:
            return self.redis_url_env
        path = self.embedded_redis_url_file
        if path.exists():
            return path.read_text().strip()
        raise ConfigError(
            "No Redis: set AIGC_REDIS_URL, or start the embedded platform with `aigc up`",
            param="AIGC_REDIS_URL",
        )

    @property
    def uses_embedded_redis(self) -> bool:
        return not self.redis_url_env


def _config_error(exc: ValidationError) -> ConfigError:
    """pydantic's errors as one ConfigError: the first names its variable, `errors` holds them all."""
    problems = []
    for err in exc.errors():
        field = str(err["loc"][0]) if err["loc"] else ""
        # A field read through an alias is reported under the alias, already a variable's name.
        var = Settings.env_var(field) if field in Settings.model_fields else field
        message = f"{var} " + err["msg"].removeprefix("Value error, ").replace("Input should be", "must be", 1)
        hidden = field in Settings.model_fields and not Settings.model_fields[field].repr  # a secret
        problems.append({"param": var, "message": message if hidden else f"{message}, got {err['input']!r}",
                         "code": ConfigError.code})
    return ConfigError(problems[0]["message"], param=problems[0]["param"], errors=problems)
