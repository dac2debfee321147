"""Unit-test fixtures: Settings built from an explicit environment that points into tmp_path."""

from __future__ import annotations

import pytest

from core.config import Settings


@pytest.fixture
def make_settings(tmp_path):
    """Settings.from_env over a private data and models dir; keyword overrides are AIGC_* values."""

    def make(**env) -> Settings:
        base = {
            "AIGC_DATA_DIR": str(tmp_path / "data"),
            "AIGC_MODELS_DIR": str(tmp_path / "models"),
            "AIGC_SECRET_KEY": "unit-test-secret-key-0123456789",
        }
        base.update(env)
        return Settings.from_env(base)

    return make


@pytest.fixture
def settings(make_settings) -> Settings:
    return make_settings()


@pytest.fixture
def pin_fp32(monkeypatch):
    """Generate in fp32 whatever the CPU: for tests that compare texts across batch shapes (bf16
    rounds a padded batch differently from a prompt alone; see test_text_generation.py)."""
    import models.text as text_module

    monkeypatch.setattr(text_module, "cpu_native_bf16", lambda: False)


@pytest.fixture(scope="session")
def tiny():
    """The built-in tiny GPT-2, loaded once for the unit tests that generate."""
    from models.text import load_text_model

    return load_text_model("builtin:tiny-gpt2", "builtin")
