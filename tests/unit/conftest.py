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


@pytest.fixture(scope="session")
def varied():
    """The tiny architecture with large random weights: the built-in's untrained weights make greedy
    decoding repeat one byte, which would hide padding, position, cache and stop-string mistakes."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from models.builtin import BUILTIN_CONFIGS, byte_level_tokenizer
    from models.text import TextModel

    tok = byte_level_tokenizer()
    config = GPT2Config(vocab_size=len(tok), bos_token_id=256, eos_token_id=256, pad_token_id=256,
                        initializer_range=0.3, **BUILTIN_CONFIGS["builtin:tiny-gpt2"])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = GPT2LMHeadModel(config).eval()
    return TextModel("varied", model, tok, torch.device("cpu"), config.n_positions)
