"""Which models a request may name: built-ins, directories under AIGC_MODELS_DIR, cached Hub ids.

No torch on purpose: the web process validates model names without importing it. The Hub cache is
read through huggingface_hub itself, so web and workers agree on where it is (HF_HUB_CACHE, HF_HOME,
XDG_CACHE_HOME) and on what counts as cached.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from core.config import Settings
from core.errors import InvalidInput

# Built-in text models, which work with no network. The ad-writer is trained by the project
# (models/ad_writer/) and ships as weights; the tiny GPT-2 is built from a config with seeded,
# untrained weights, for tests that need speed: its text is noise until fine-tuned.
DEFAULT_TEXT_MODEL = "builtin:ad-writer"
BUILTIN_TEXT_MODELS = {
    DEFAULT_TEXT_MODEL: "ad writer, trained here: short English and Chinese ads from a product, an audience "
                        "and keywords, as a completion or a chat (5M parameters)",
    "builtin:tiny-gpt2": "tiny GPT-2, untrained, for tests that need speed: its text is noise until fine-tuned",
}

# Their context windows in tokens (a unit test keeps these in step with the models themselves).
BUILTIN_CONTEXT_TOKENS = {DEFAULT_TEXT_MODEL: 512, "builtin:tiny-gpt2": 1024}
_CONTEXT_KEYS = ("n_positions", "max_position_embeddings", "n_ctx", "seq_length")

FINE_TUNED_PREFIX = "ft:"

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?$")


@dataclass(frozen=True)
class ModelRef:
    """A validated model reference: what the worker loads and from where."""

    id: str
    source: str  # builtin | local | hub


def hub_cache_dir() -> Path:
    """The Hub cache huggingface_hub (and so transformers in a worker) uses: HF_HUB_CACHE, else
    HF_HOME/hub, else XDG_CACHE_HOME/huggingface/hub, as huggingface_hub read them at start-up."""
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def _local_dir(settings: Settings, name: str) -> Path | None:
    path = (settings.models_dir / name).resolve()
    if settings.models_dir.resolve() not in path.parents:
        return None
    return path if (path / "config.json").is_file() else None


# huggingface_hub's cache functions are imported on first use: they pull in its HTTP client (0.2 s),
# which requests naming built-in or local models never need.
def _hub_cached(name: str) -> bool:
    """Whether a worker can load the Hub model `name` offline: its config.json is cached at `main`,
    the revision `from_pretrained(local_files_only=True)` reads."""
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(name, "config.json", cache_dir=hub_cache_dir())
    except ValueError:  # not a valid Hub id (HFValidationError), so never cached
        return False
    return isinstance(found, str)  # else None (not cached) or a "known missing" marker


def _cached_hub_ids() -> list[str]:
    from huggingface_hub import CacheNotFound, scan_cache_dir

    try:
        repos = scan_cache_dir(hub_cache_dir()).repos
    except CacheNotFound:
        return []
    return sorted(r.repo_id for r in repos if r.repo_type == "model" and _hub_cached(r.repo_id))


def resolve_text_model(name, settings: Settings, param: str = "input.model",
                       owns_model: Callable[[str], bool] | None = None,
                       published: Callable[[], dict[str, str]] | None = None) -> ModelRef:
    """A ModelRef for a model the caller can load, else InvalidInput naming `param`.

    `owns_model` answers for models produced here (`ft:...`), which belong to one owner;
    `published` gives the local and cached models the running workers announce, so a web
    server without the workers' model volume still accepts their models.
    """
    if not isinstance(name, str) or not name:
        raise InvalidInput("model must be a non-empty string", param=param)
    if name in BUILTIN_TEXT_MODELS:
        return ModelRef(name, "builtin")
    if name.startswith(FINE_TUNED_PREFIX):
        if owns_model and owns_model(name):
            return ModelRef(name, "fine-tune")
        raise InvalidInput(f"Unknown model {name!r}", param=param, code="model_not_found")
    if not _NAME_RE.match(name) or ".." in name:
        raise InvalidInput(f"Unknown model {name!r}", param=param, code="model_not_found")
    if _local_dir(settings, name):
        return ModelRef(name, "local")
    if settings.allow_hub_downloads or _hub_cached(name):
        return ModelRef(name, "hub")
    source = (published() if published else {}).get(name)
    if source:
        return ModelRef(name, source)
    raise InvalidInput(
        f"Unknown model {name!r}: not built in, not under AIGC_MODELS_DIR, not in the Hugging Face "
        "cache (set AIGC_ALLOW_HUB_DOWNLOADS=true to fetch Hub models)",
        param=param, code="model_not_found")


def context_tokens(name: str, settings: Settings) -> int | None:
    """A text model's context window, where the web can read it without loading the model: the
    built-ins, directories under AIGC_MODELS_DIR and cached Hub configs. None where it cannot
    (fine-tunes, models only the workers have): the worker then refuses what does not fit."""
    if name in BUILTIN_CONTEXT_TOKENS:
        return BUILTIN_CONTEXT_TOKENS[name]
    values = _text_config(name, settings)
    sizes = [values.get(k) for k in _CONTEXT_KEYS]
    return next((int(v) for v in sizes if isinstance(v, int) and v > 0), None)


def kv_bytes_per_token(name: str, settings: Settings) -> int | None:
    """Key/value-cache bytes one sequence-token of a text model takes in fp32 (the most a worker keeps
    it in), from its config where the web can read it; None where it cannot."""
    values = _text_config(name, settings)
    layers, hidden, heads = (values.get(k) for k in ("num_hidden_layers", "hidden_size", "num_attention_heads"))
    layers = layers or values.get("n_layer")
    hidden, heads = hidden or values.get("n_embd"), heads or values.get("n_head")
    if not all(isinstance(v, int) and v > 0 for v in (layers, hidden, heads)):
        return None
    kv_heads = values.get("num_key_value_heads") or heads
    head_dim = values.get("head_dim") or hidden // heads
    return 2 * layers * kv_heads * head_dim * 4


def _text_config(name: str, settings: Settings) -> dict:
    """A model's config.json where the web can read it (a multimodal config's text section merged
    over it), else {}."""
    if name in BUILTIN_CONTEXT_TOKENS or not _NAME_RE.match(name) or ".." in name:
        return {}
    config = None
    local = _local_dir(settings, name)
    if local is not None:
        config = local / "config.json"
    else:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(name, "config.json", cache_dir=hub_cache_dir())
        config = Path(found) if isinstance(found, str) else None
    if config is None:
        return {}
    try:
        values = json.loads(config.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(values, dict):
        return {}
    text = values.get("text_config")
    return {**values, **text} if isinstance(text, dict) else values


def local_model_path(settings: Settings, name: str) -> Path:
    path = _local_dir(settings, name)
    if path is None:
        raise InvalidInput(f"Unknown model {name!r}", param="input.model", code="model_not_found")
    return path


def list_text_models(settings: Settings) -> list[dict]:
    out = [{"id": k, "kind": "text", "source": "builtin", "description": v}
           for k, v in BUILTIN_TEXT_MODELS.items()]
    if settings.models_dir.is_dir():
        for cfg in sorted(settings.models_dir.glob("*/config.json")) + sorted(
                settings.models_dir.glob("*/*/config.json")):
            name = str(cfg.parent.relative_to(settings.models_dir))
            out.append({"id": name, "kind": "text", "source": "local"})
    out += [{"id": name, "kind": "text", "source": "hub"} for name in _cached_hub_ids()]
    return out


def published_text_models(client) -> dict[str, str]:
    """{model id: source} for the local and cached models that live workers announce."""
    from core.redisdb import WORKER_PREFIX

    models: dict[str, str] = {}
    for key in client.scan_iter(WORKER_PREFIX + "*", count=100):
        raw = client.get(key)
        for entry in (json.loads(raw).get("models") or []) if raw else []:
            models.setdefault(entry["id"], entry["source"])
    return models


def announced_text_models(settings: Settings) -> list[dict]:
    """What a worker announces: the models only its own disk knows about."""
    return [{"id": m["id"], "source": m["source"]} for m in list_text_models(settings)
            if m["source"] in ("local", "hub")]
