"""How tasks get models: resolve a name for the job's owner, fetch fine-tunes from storage, cache per worker."""

from __future__ import annotations

from pathlib import Path

from core.catalog import local_model_path, resolve_text_model
from core.registry import ModelRegistry
from core.storage_dirs import download_dir
from models.text import TextModel, load_text_model
from workers.runtime import get_runtime


def _source_and_path(name: str, owner: str, param: str) -> tuple[str, Path | None]:
    rt = get_runtime()
    registry = ModelRegistry(rt.redis)
    ref = resolve_text_model(name, rt.settings, param, lambda m: registry.exists(m, owner))
    if ref.source == "local":
        return "local", local_model_path(rt.settings, name)
    if ref.source == "fine-tune":
        record = registry.get(name, owner)
        # Verified against the manifest written at training time before anything is loaded.
        path = download_dir(rt.storage, record["prefix"], record["manifest"],
                            rt.settings.data_dir / "model-cache" / record["job_id"])
        return "local", path
    return ref.source, None


def load_fresh(name: str, owner: str, param: str) -> TextModel:
    """A private copy (for training, which changes the weights)."""
    rt = get_runtime()
    source, path = _source_and_path(name, owner, param)
    return load_text_model(name, source, rt.device, path, rt.settings.allow_hub_downloads)


def load_cached(name: str, owner: str, param: str = "input.model") -> TextModel:
    """The worker's shared copy, loaded on first use."""
    rt = get_runtime()
    return rt.models.get(("text", owner if name.startswith("ft:") else "", name),
                         lambda: load_fresh(name, owner, param))
