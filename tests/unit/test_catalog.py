"""The model catalog: built-ins, local directories under AIGC_MODELS_DIR, cached Hub ids, and refusals."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from huggingface_hub import constants

from core.catalog import (BUILTIN_CONTEXT_TOKENS, BUILTIN_TEXT_MODELS, DEFAULT_TEXT_MODEL, ModelRef, context_tokens,
                          kv_bytes_per_token, list_text_models, local_model_path, resolve_text_model)
from core.errors import InvalidInput

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """An empty Hugging Face cache dir that huggingface_hub uses (it read HF_HUB_CACHE at import,
    so this process's copy is pointed at it too)."""
    root = tmp_path / "hf-cache"
    root.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(root))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(root))
    return root


def add_hub_model(cache: Path, repo_id: str, commit: str = "0" * 40) -> Path:
    """A model in huggingface_hub's cache layout, as a finished download of `main` leaves it."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    return repo


def add_local_model(settings, name: str):
    path = settings.models_dir / name
    path.mkdir(parents=True)
    (path / "config.json").write_text("{}")
    return path


def test_builtin_resolves(settings, hub_cache):
    for name in BUILTIN_TEXT_MODELS:
        assert resolve_text_model(name, settings) == ModelRef(name, "builtin")


def test_builtin_names_match_what_models_builtin_builds():
    from models import ad_writer
    from models.builtin import BUILTIN_CONFIGS

    assert set(BUILTIN_TEXT_MODELS) == set(BUILTIN_CONFIGS) | {ad_writer.NAME}
    assert DEFAULT_TEXT_MODEL == ad_writer.NAME
    # The web's copy of their context windows, which it checks max_new_tokens against.
    ad_config = json.loads((REPO / "models" / "ad_writer" / "weights" / "config.json").read_text())
    assert BUILTIN_CONTEXT_TOKENS == {ad_writer.NAME: ad_config["n_positions"],
                                      **{k: v["n_positions"] for k, v in BUILTIN_CONFIGS.items()}}


def test_context_windows_come_from_the_config_the_web_can_read(settings, hub_cache):
    path = add_local_model(settings, "long-gpt")
    (path / "config.json").write_text(json.dumps({"max_position_embeddings": 4096}))
    repo = add_hub_model(hub_cache, "org/vlm")
    (repo / "snapshots" / ("0" * 40) / "config.json").write_text(json.dumps({"text_config": {"n_positions": 2048}}))
    assert context_tokens("long-gpt", settings) == 4096
    assert context_tokens("org/vlm", settings) == 2048
    assert context_tokens("builtin:tiny-gpt2", settings) == 1024
    assert context_tokens("ft:builtin:tiny-gpt2:alice:ads:abc", settings) is None  # the worker checks those


def test_local_directory_resolves_and_is_listed(settings, hub_cache):
    path = add_local_model(settings, "my-gpt")
    nested = add_local_model(settings, "org/other-gpt")
    assert resolve_text_model("my-gpt", settings) == ModelRef("my-gpt", "local")
    assert resolve_text_model("org/other-gpt", settings) == ModelRef("org/other-gpt", "local")
    assert local_model_path(settings, "my-gpt") == path.resolve()
    assert local_model_path(settings, "org/other-gpt") == nested.resolve()
    listed = {m["id"]: m for m in list_text_models(settings)}
    assert listed["my-gpt"]["source"] == "local" and listed["org/other-gpt"]["source"] == "local"
    assert all(listed[name]["source"] == "builtin" for name in BUILTIN_TEXT_MODELS)


def test_directory_without_config_is_not_a_model(settings, hub_cache):
    (settings.models_dir / "empty").mkdir(parents=True)
    with pytest.raises(InvalidInput) as exc:
        resolve_text_model("empty", settings)
    assert exc.value.code == "model_not_found"
    assert "empty" not in {m["id"] for m in list_text_models(settings)}


@pytest.mark.parametrize("name", [
    "../x", "..", "a/../b", "/etc/passwd", "/tmp", "~/models", "a/b/c", "-rf", "my gpt",
    "a\\..\\b", "x" * 200,
])
def test_unsafe_names_are_refused(settings, hub_cache, name, tmp_path):
    # A real model outside models_dir that a traversal would reach.
    (tmp_path / "x").mkdir(exist_ok=True)
    (tmp_path / "x" / "config.json").write_text("{}")
    with pytest.raises(InvalidInput) as exc:
        resolve_text_model(name, settings, param="input.model")
    assert exc.value.param == "input.model"
    with pytest.raises(InvalidInput):
        local_model_path(settings, name)


def test_symlink_out_of_models_dir_is_refused(settings, hub_cache, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "config.json").write_text("{}")
    settings.models_dir.mkdir(parents=True)
    (settings.models_dir / "sneaky").symlink_to(outside, target_is_directory=True)
    with pytest.raises(InvalidInput):
        resolve_text_model("sneaky", settings)


@pytest.mark.parametrize("name", [None, "", 3, ["builtin:tiny-gpt2"]])
def test_non_string_names_are_refused(settings, name):
    with pytest.raises(InvalidInput) as exc:
        resolve_text_model(name, settings)
    assert exc.value.param == "input.model"


def test_cached_hub_id_resolves_as_hub_and_is_listed(settings, hub_cache):
    add_hub_model(hub_cache, "some-org/some-model")
    add_hub_model(hub_cache, "plain-name")
    (hub_cache / "models--no-snapshots--model").mkdir()  # a download that never finished
    (hub_cache / "models--no-config--model" / "snapshots" / "abc").mkdir(parents=True)  # nor this one
    (hub_cache / "datasets--some-org--some-data" / "snapshots").mkdir(parents=True)  # not a model
    assert resolve_text_model("some-org/some-model", settings) == ModelRef("some-org/some-model", "hub")
    assert resolve_text_model("plain-name", settings) == ModelRef("plain-name", "hub")
    hub_ids = {m["id"] for m in list_text_models(settings) if m["source"] == "hub"}
    assert hub_ids == {"some-org/some-model", "plain-name"}
    for name in ("no-snapshots/model", "no-config/model", "some-org/some-data"):
        with pytest.raises(InvalidInput):
            resolve_text_model(name, settings)


@pytest.mark.parametrize("variable, cache_under", [
    ("HF_HUB_CACHE", ""), ("HF_HOME", "hub"), ("XDG_CACHE_HOME", "huggingface/hub")])
def test_the_cache_is_where_huggingface_hub_looks(tmp_path, variable, cache_under):
    """Each variable huggingface_hub honours moves the cache the catalog reads (in a fresh process:
    huggingface_hub reads them at import, as the web server and a worker do at start-up)."""
    add_hub_model(tmp_path / "cache-root" / cache_under, "org/cached-model")
    env = {k: v for k, v in os.environ.items()
           if k not in ("HF_HUB_CACHE", "HF_HOME", "HUGGINGFACE_HUB_CACHE", "XDG_CACHE_HOME")}
    env.update({variable: str(tmp_path / "cache-root"), "AIGC_DATA_DIR": str(tmp_path / "data"),
                "AIGC_SECRET_KEY": "unit-test-secret-key-0123456789"})
    code = ("import json; from core.catalog import list_text_models, resolve_text_model;"
            "from core.config import Settings; s = Settings.from_env();"
            "print(json.dumps([resolve_text_model('org/cached-model', s).source,"
            " [m['id'] for m in list_text_models(s) if m['source'] == 'hub']]))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert json.loads(out) == ["hub", ["org/cached-model"]]


def test_uncached_hub_id_is_refused_unless_downloads_are_allowed(make_settings, hub_cache):
    with pytest.raises(InvalidInput) as exc:
        resolve_text_model("some-org/uncached", make_settings())
    assert exc.value.code == "model_not_found" and exc.value.param == "input.model"
    assert "AIGC_ALLOW_HUB_DOWNLOADS" in exc.value.message
    allowed = make_settings(AIGC_ALLOW_HUB_DOWNLOADS="true")
    assert resolve_text_model("some-org/uncached", allowed) == ModelRef("some-org/uncached", "hub")


def test_allowing_downloads_does_not_allow_traversal(make_settings, hub_cache):
    allowed = make_settings(AIGC_ALLOW_HUB_DOWNLOADS="true")
    for name in ("../x", "/abs/path"):
        with pytest.raises(InvalidInput):
            resolve_text_model(name, allowed)


def test_local_directory_wins_over_hub(settings, hub_cache):
    add_local_model(settings, "org/name")
    add_hub_model(hub_cache, "org/name")
    assert resolve_text_model("org/name", settings).source == "local"


def test_models_announced_by_workers_resolve(settings):
    from core.catalog import resolve_text_model

    ref = resolve_text_model("only-on-workers", settings, "input.model", None,
                             lambda: {"only-on-workers": "local"})
    assert (ref.id, ref.source) == ("only-on-workers", "local")


def test_a_request_that_could_never_fit_the_cache_is_refused_at_submission(make_settings, hub_cache):
    from core.schemas import job_create

    settings = make_settings(AIGC_KV_CACHE_BYTES=str(64 << 20))
    path = add_local_model(settings, "wide-gpt")
    # 24 layers x 2 x 1024 wide x 4 bytes: 192 KiB a token, so 64 MiB holds 341 tokens.
    (path / "config.json").write_text(json.dumps({"n_layer": 24, "n_embd": 1024, "n_head": 16, "n_positions": 2048}))
    assert kv_bytes_per_token("wide-gpt", settings) == 24 * 2 * 1024 * 4

    def submit(**inp):
        body = {"kind": "text.generate", "input": {"model": "wide-gpt", "prompt": "hi", **inp}}
        return job_create(body, settings)

    submit(max_new_tokens=300, n=1)  # 301 tokens fit
    submit(max_new_tokens=300, n=8, temperature=0)  # greedy choices are one sequence
    with pytest.raises(InvalidInput) as exc:
        submit(max_new_tokens=300, n=2, temperature=1.0)
    assert exc.value.param == "input.n" and exc.value.code == "invalid_input" and "at most 1" in exc.value.message
