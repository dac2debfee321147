"""Settings.from_env: production secrets, the development secret file, bad values, and the Redis URL."""

from __future__ import annotations

import stat

import pytest

from core.config import Settings
from core.errors import ConfigError


def env_for(tmp_path, **extra) -> dict:
    return {"AIGC_DATA_DIR": str(tmp_path / "data"), **extra}


@pytest.mark.parametrize("secret", ["", "changeme", "CHANGEME", "secret", "dev", "development",
                                    "change-me", "short-but-real"])
def test_production_refuses_placeholder_or_short_secrets(tmp_path, secret):
    with pytest.raises(ConfigError) as exc:
        Settings.from_env(env_for(tmp_path, AIGC_ENV="production", AIGC_SECRET_KEY=secret))
    assert exc.value.param == "AIGC_SECRET_KEY"
    assert "AIGC_SECRET_KEY" in exc.value.message
    assert not (tmp_path / "data" / "secret_key").exists()


def test_production_accepts_a_real_secret(tmp_path):
    settings = Settings.from_env(env_for(tmp_path, AIGC_ENV="production",
                                         AIGC_SECRET_KEY="a-real-secret-of-32-characters!!"))
    assert settings.env == "production"
    assert settings.secret_key == "a-real-secret-of-32-characters!!"
    assert "a-real-secret" not in repr(settings)


def test_development_generates_and_persists_a_secret(tmp_path):
    first = Settings.from_env(env_for(tmp_path))
    path = tmp_path / "data" / "secret_key"
    assert path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first.secret_key) >= 32
    second = Settings.from_env(env_for(tmp_path))
    assert second.secret_key == first.secret_key
    other = Settings.from_env({"AIGC_DATA_DIR": str(tmp_path / "elsewhere")})
    assert other.secret_key != first.secret_key


def test_development_uses_a_given_secret_without_writing_a_file(tmp_path):
    settings = Settings.from_env(env_for(tmp_path, AIGC_SECRET_KEY="dev"))
    assert settings.secret_key == "dev"
    assert not (tmp_path / "data" / "secret_key").exists()


def test_unknown_env_mode_is_refused(tmp_path):
    with pytest.raises(ConfigError) as exc:
        Settings.from_env(env_for(tmp_path, AIGC_ENV="staging"))
    assert exc.value.param == "AIGC_ENV"


@pytest.mark.parametrize("name, value", [
    ("AIGC_MAX_NEW_TOKENS", "lots"),
    ("AIGC_LEASE_TTL_S", "1.5"),
    ("AIGC_MAX_ATTEMPTS", "0"),
    ("AIGC_LEASE_TTL_S", "1"),
    ("AIGC_MAX_REQUEST_BYTES", "-5"),
    ("AIGC_MODEL_CACHE_SIZE", "two"),
])
def test_bad_integer_env_names_the_variable(tmp_path, name, value):
    with pytest.raises(ConfigError) as exc:
        Settings.from_env(env_for(tmp_path, **{name: value}))
    assert exc.value.param == name
    assert name in exc.value.message


@pytest.mark.parametrize("value", ["maybe", "2"])
def test_bad_boolean_env_names_the_variable(tmp_path, value):
    with pytest.raises(ConfigError) as exc:
        Settings.from_env(env_for(tmp_path, AIGC_ALLOW_HUB_DOWNLOADS=value))
    assert exc.value.param == "AIGC_ALLOW_HUB_DOWNLOADS"


def test_values_are_parsed(tmp_path):
    settings = Settings.from_env(env_for(
        tmp_path, AIGC_MAX_NEW_TOKENS="77", AIGC_ALLOW_HUB_DOWNLOADS="yes", AIGC_ALLOW_VOLATILE_REDIS="0",
        AIGC_PUBLIC_URL="http://example.test:9000/", AIGC_MAX_ATTEMPTS=""))
    assert settings.max_new_tokens == 77
    assert settings.allow_hub_downloads is True and settings.allow_volatile_redis is False
    assert settings.public_url == "http://example.test:9000"
    assert settings.api_url == "http://example.test:9000"
    assert settings.max_attempts == 3  # empty means default
    assert settings.storage_url == (tmp_path / "data" / "artifacts").resolve().as_uri()
    assert settings.models_dir == (tmp_path / "data" / "models").resolve()


@pytest.mark.parametrize("url", ["http://bucket/prefix", "/var/data", "gs://bucket", "S3://bucket"])
def test_bad_storage_url_scheme_is_refused(tmp_path, url):
    with pytest.raises(ConfigError) as exc:
        Settings.from_env(env_for(tmp_path, AIGC_STORAGE_URL=url))
    assert exc.value.param == "AIGC_STORAGE_URL"


@pytest.mark.parametrize("url", ["s3://bucket/prefix", "file:///srv/aigc"])
def test_good_storage_urls_are_kept(tmp_path, url):
    assert Settings.from_env(env_for(tmp_path, AIGC_STORAGE_URL=url)).storage_url == url


def test_redis_url_without_env_or_embedded_file_is_a_config_error(tmp_path):
    settings = Settings.from_env(env_for(tmp_path))
    assert settings.uses_embedded_redis
    with pytest.raises(ConfigError) as exc:
        _ = settings.redis_url
    assert exc.value.param == "AIGC_REDIS_URL"


def test_redis_url_reads_the_embedded_url_file(tmp_path):
    settings = Settings.from_env(env_for(tmp_path))
    settings.embedded_redis_url_file.write_text("redis://:pw@127.0.0.1:6390/0\n")
    assert settings.embedded_redis_url_file.parent == tmp_path / "data"
    assert settings.redis_url == "redis://:pw@127.0.0.1:6390/0"


def test_every_setting_is_declared_with_a_description_and_a_prefixed_variable():
    for name, field in Settings.model_fields.items():
        assert field.description, name
        assert Settings.env_var(name).startswith("AIGC_"), name


def test_empty_env_mode_means_the_default_and_an_empty_region_falls_back_to_aws(tmp_path):
    settings = Settings.from_env(env_for(tmp_path, AIGC_ENV="", AIGC_S3_REGION="", AWS_DEFAULT_REGION="eu-west-1"))
    assert settings.env == "development" and settings.s3_region == "eu-west-1"


def test_every_bad_value_is_reported_and_secrets_are_not_echoed(tmp_path):
    with pytest.raises(ConfigError) as exc:
        Settings.from_env(env_for(tmp_path, AIGC_ENV="production", AIGC_SECRET_KEY="hunter2",
                                  AIGC_MAX_CHOICES="many"))
    assert [e["param"] for e in exc.value.errors] == ["AIGC_SECRET_KEY", "AIGC_MAX_CHOICES"]
    assert "hunter2" not in str(exc.value.errors) and "'many'" in exc.value.errors[1]["message"]


def test_the_process_environment_is_read_only_when_no_mapping_is_given(tmp_path, monkeypatch):
    monkeypatch.setenv("AIGC_MAX_CHOICES", "3")
    monkeypatch.setenv("AIGC_DATA_DIR", str(tmp_path / "data"))
    assert Settings.from_env().max_choices == 3
    assert Settings.from_env(env_for(tmp_path)).max_choices == 8


def test_redis_url_env_wins_over_the_file(tmp_path):
    settings = Settings.from_env(env_for(tmp_path, AIGC_REDIS_URL="redis://external:6379/1"))
    settings.embedded_redis_url_file.write_text("redis://127.0.0.1:1/0")
    assert settings.redis_url == "redis://external:6379/1"
    assert not settings.uses_embedded_redis
