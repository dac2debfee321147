"""Typed settings read once from the environment (AIGC_*), validated at start-up."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import ConfigError

# Placeholder secrets that must never run in production.
_PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "secret", "dev", "development"}


def _env_int(env: dict, name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}", param=name) from None
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}", param=name)
    return value


def _env_bool(env: dict, name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}", param=name)


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


@dataclass(frozen=True)
class Settings:
    """Every knob of the platform; each field documents its environment variable."""

    env: str = "development"  # AIGC_ENV: development | production
    data_dir: Path = Path(".aigc")  # AIGC_DATA_DIR: embedded Redis data, local artifacts, dev secrets
    redis_url_env: str | None = None  # AIGC_REDIS_URL: external Redis; unset means the embedded one
    storage_url: str = ""  # AIGC_STORAGE_URL: file:///dir or s3://bucket/prefix
    s3_endpoint_url: str | None = None  # AIGC_S3_ENDPOINT_URL: MinIO or any S3-compatible endpoint
    s3_public_endpoint_url: str | None = None  # AIGC_S3_PUBLIC_ENDPOINT_URL: host in download links
    s3_region: str = "us-east-1"  # AIGC_S3_REGION
    secret_key: str = field(default="", repr=False)  # AIGC_SECRET_KEY: signs sessions and local URLs
    models_dir: Path = Path(".aigc/models")  # AIGC_MODELS_DIR: local model directories by name
    public_url: str = "http://127.0.0.1:8000"  # AIGC_PUBLIC_URL: base of links the server hands out
    max_request_bytes: int = 1 << 20  # AIGC_MAX_REQUEST_BYTES: larger bodies get 413
    max_upload_bytes: int = 50 << 20  # AIGC_MAX_UPLOAD_BYTES: larger uploads get 413
    max_new_tokens: int = 1024  # AIGC_MAX_NEW_TOKENS: upper bound for input.max_new_tokens
    max_choices: int = 8  # AIGC_MAX_CHOICES: upper bound for input.n
    max_prompt_chars: int = 16000  # AIGC_MAX_PROMPT_CHARS
    max_campaign_rows: int = 100_000  # AIGC_MAX_CAMPAIGN_ROWS: rows in one campaign
    sync_timeout_s: int = 60  # AIGC_SYNC_TIMEOUT_S: POST /v1/completions waits this long, then 504
    lease_ttl_s: int = 30  # AIGC_LEASE_TTL_S: a running job's lease; the heartbeat renews it
    visibility_timeout_s: int = 6 * 3600  # AIGC_VISIBILITY_TIMEOUT_S: above the longest task
    max_attempts: int = 3  # AIGC_MAX_ATTEMPTS: a job that keeps killing workers fails after this
    reaper_interval_s: int = 10  # AIGC_REAPER_INTERVAL_S: how often workers look for orphaned jobs
    model_cache_size: int = 2  # AIGC_MODEL_CACHE_SIZE: loaded models kept per worker process
    torch_threads: int = 0  # AIGC_TORCH_THREADS: 0 = CPUs divided by worker concurrency
    worker_concurrency: int = 1  # AIGC_WORKER_CONCURRENCY: processes per worker
    generate_batch_jobs: int = 16  # AIGC_GENERATE_BATCH_JOBS: queued text.generate jobs run as one batch
    presign_ttl_s: int = 300  # AIGC_PRESIGN_TTL_S: lifetime of artifact download links
    allow_hub_downloads: bool = False  # AIGC_ALLOW_HUB_DOWNLOADS: fetch Hugging Face ids not cached
    allow_volatile_redis: bool = False  # AIGC_ALLOW_VOLATILE_REDIS: run on Redis without AOF
    api_url: str = "http://127.0.0.1:8000"  # AIGC_API_URL: where the CLI sends requests
    api_key: str | None = field(default=None, repr=False)  # AIGC_API_KEY: the CLI's key

    @classmethod
    def from_env(cls, environ: dict | None = None) -> "Settings":
        env = dict(os.environ if environ is None else environ)
        mode = env.get("AIGC_ENV", "development")
        if mode not in ("development", "production"):
            raise ConfigError("AIGC_ENV must be development or production", param="AIGC_ENV")
        data_dir = Path(env.get("AIGC_DATA_DIR") or ".aigc").resolve()
        storage_url = env.get("AIGC_STORAGE_URL") or (data_dir / "artifacts").as_uri()
        if not storage_url.startswith(("file://", "s3://")):
            raise ConfigError("AIGC_STORAGE_URL must start with file:// or s3://", param="AIGC_STORAGE_URL")
        secret = env.get("AIGC_SECRET_KEY", "")
        if mode == "production":
            if secret.lower() in _PLACEHOLDER_SECRETS or len(secret) < 16:
                raise ConfigError("AIGC_SECRET_KEY must be a real secret of 16+ characters in production",
                                  param="AIGC_SECRET_KEY")
        elif not secret:
            secret = _read_or_create_secret(data_dir / "secret_key")
        public_url = env.get("AIGC_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")
        return cls(
            env=mode,
            data_dir=data_dir,
            redis_url_env=env.get("AIGC_REDIS_URL") or None,
            storage_url=storage_url,
            s3_endpoint_url=env.get("AIGC_S3_ENDPOINT_URL") or None,
            s3_public_endpoint_url=env.get("AIGC_S3_PUBLIC_ENDPOINT_URL") or None,
            s3_region=env.get("AIGC_S3_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
            secret_key=secret,
            models_dir=Path(env.get("AIGC_MODELS_DIR") or data_dir / "models").resolve(),
            public_url=public_url,
            max_request_bytes=_env_int(env, "AIGC_MAX_REQUEST_BYTES", 1 << 20, 1024),
            max_upload_bytes=_env_int(env, "AIGC_MAX_UPLOAD_BYTES", 50 << 20, 1024),
            max_new_tokens=_env_int(env, "AIGC_MAX_NEW_TOKENS", 1024, 1),
            max_choices=_env_int(env, "AIGC_MAX_CHOICES", 8, 1),
            max_prompt_chars=_env_int(env, "AIGC_MAX_PROMPT_CHARS", 16000, 1),
            max_campaign_rows=_env_int(env, "AIGC_MAX_CAMPAIGN_ROWS", 100_000, 1),
            sync_timeout_s=_env_int(env, "AIGC_SYNC_TIMEOUT_S", 60, 1),
            lease_ttl_s=_env_int(env, "AIGC_LEASE_TTL_S", 30, 2),
            visibility_timeout_s=_env_int(env, "AIGC_VISIBILITY_TIMEOUT_S", 6 * 3600, 5),
            max_attempts=_env_int(env, "AIGC_MAX_ATTEMPTS", 3, 1),
            reaper_interval_s=_env_int(env, "AIGC_REAPER_INTERVAL_S", 10, 1),
            model_cache_size=_env_int(env, "AIGC_MODEL_CACHE_SIZE", 2, 1),
            torch_threads=_env_int(env, "AIGC_TORCH_THREADS", 0, 0),
            worker_concurrency=_env_int(env, "AIGC_WORKER_CONCURRENCY", 1, 1),
            generate_batch_jobs=_env_int(env, "AIGC_GENERATE_BATCH_JOBS", 16, 1),
            presign_ttl_s=_env_int(env, "AIGC_PRESIGN_TTL_S", 300, 10),
            allow_hub_downloads=_env_bool(env, "AIGC_ALLOW_HUB_DOWNLOADS", False),
            allow_volatile_redis=_env_bool(env, "AIGC_ALLOW_VOLATILE_REDIS", False),
            api_url=(env.get("AIGC_API_URL") or public_url).rstrip("/"),
            api_key=env.get("AIGC_API_KEY") or None,
        )

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

