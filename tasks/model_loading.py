"""How tasks get models: resolve a name for the job's owner, fetch fine-tunes from storage, cache per worker.

A LoRA fine-tune (a registry record with an `adapter` in its info) is served over its base: the
base is loaded and cached once, and each adapter is loaded into the base's AdapterSet
(models/lora.py) on first use, so requests naming different adapters of one base share it.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from core.catalog import local_model_path, resolve_text_model
from core.errors import InvalidInput, NotFound
from core.registry import ModelRegistry
from core.storage_dirs import download_dir
from models.lora import AdapterSet, merge_adapter
from models.text import TextModel, load_text_model
from workers.runtime import get_runtime

ADAPTERS_PER_BASE = 32  # adapters held in memory over one base; the least recently used goes first


def _fine_tune(name: str, owner: str) -> dict | None:
    """The owner's registry record of an `ft:` model (ownership and readiness checked), else None."""
    if not name.startswith("ft:"):
        return None
    try:
        return ModelRegistry(get_runtime().redis).get(name, owner)
    except NotFound:
        return None


def _download(record: dict) -> Path:
    """A registered model's files in the worker's cache, verified against the manifest written at
    training time before anything is loaded; one directory per stored prefix (a job's checkpoints
    and its final model are different files)."""
    rt = get_runtime()
    return download_dir(rt.storage, record["prefix"], record["manifest"],
                        rt.settings.data_dir / "model-cache" / record["prefix"].replace("/", "_"))


def _source_and_path(name: str, owner: str, param: str) -> tuple[str, Path | None]:
    rt = get_runtime()
    registry = ModelRegistry(rt.redis)
    ref = resolve_text_model(name, rt.settings, param, lambda m: registry.exists(m, owner))
    if ref.source == "local":
        return "local", local_model_path(rt.settings, name)
    if ref.source == "fine-tune":
        return "local", _download(registry.get(name, owner))
    return ref.source, None


def load_fresh(name: str, owner: str, param: str) -> TextModel:
    """A private copy (for training, which changes the weights); an adapter comes merged into its base."""
    rt = get_runtime()
    record = _fine_tune(name, owner)
    if record and record["info"].get("adapter"):
        tm = load_fresh(record["base"], owner, param)
        merge_adapter(tm.model, _download(record))
        return replace(tm, name=name)
    source, path = _source_and_path(name, owner, param)
    return load_text_model(name, source, rt.device, path, rt.settings.allow_hub_downloads)


def load_cached(name: str, owner: str, param: str = "input.model") -> TextModel:
    """The worker's shared copy, loaded on first use; for an adapter, its cached base with the
    adapter loaded (TextModel.adapter names it: generation applies it to every row)."""
    rt = get_runtime()
    record = _fine_tune(name, owner)
    if record and record["info"].get("adapter"):
        base = load_cached(record["base"], owner, param)
        if base.adapters is None:
            base.adapters = AdapterSet(base.model, ADAPTERS_PER_BASE)
        if name in base.adapters:
            base.adapters.touch(name)
        else:
            base.adapters.add(name, _download(record))
        return replace(base, name=name, adapter=name)
    return rt.models.get(("text", owner if name.startswith("ft:") else "", name),
                         lambda: load_fresh(name, owner, param))


def load_for_rows(names: list[str], owner: str, param: str = "input.model") -> tuple[TextModel, list[str | None]]:
    """One model for jobs naming `names` (one model, or adapters of one base, which batch together:
    core/batches.py) and the adapter of each name (None: the base itself)."""
    # Once per distinct name: a batch of sixteen jobs on one adapter looks it up once.
    loaded = {name: load_cached(name, owner, param) for name in dict.fromkeys(names)}
    first = loaded[names[0]]
    for name, tm in loaded.items():
        if tm.model is not first.model:
            raise InvalidInput(f"{name!r} is not served by the same base as {names[0]!r}", param=param)
    return first, [loaded[name].adapter for name in names]
