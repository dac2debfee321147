"""Checkpoints and produced models in storage, committed by lease-fenced pointer writes.

Shared by the training tasks: files go to a per-attempt prefix first, and the job's record
points at them only after the upload is whole, so a crash mid-upload or a worker that lost
its lease never leaves a half-written checkpoint or model in use.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Callable

from core.errors import LeaseLost
from core.finetune_names import kept_checkpoints
from core.registry import ModelRegistry, model_prefix
from core.storage_dirs import download_dir, upload_dir
from tasks.runner import JobContext


# What a checkpoint holds only to resume training (optimizer, schedule, random state): dropped when
# the checkpoint becomes a model.
STATE_FILE = "training_state.pt"


def checkpoints_dir(job_id: str) -> str:
    return f"jobs/{job_id}/checkpoints"


def checkpoint_prefix(job_id: str, epoch: int, step: int) -> str:
    # The attempt's epoch is in the name: a late upload from a worker that lost its lease
    # lands beside the committed checkpoint, never on top of it.
    return f"{checkpoints_dir(job_id)}/e{epoch}-step-{step:06d}"


def delete_prefix(storage, prefix: str | None) -> None:
    for obj in storage.list(prefix) if prefix else []:
        storage.delete(obj.key)


def save_checkpoint(ctx: JobContext, step: int, write: Callable[[Path], None], keep: int = 1,
                    metrics: dict | None = None, **extra) -> dict:
    """Upload what `write(dir)` puts in a directory, then commit the pointer; checkpoints older than
    the last `keep` are deleted only once the new one is current. The pointer lists the kept ones
    ({step, prefix, manifest, metrics}, oldest first) under "kept"."""
    rt = ctx.rt
    prefix = checkpoint_prefix(ctx.id, ctx.job["epoch"], step)
    with tempfile.TemporaryDirectory() as tmp:
        write(Path(tmp))
        manifest = upload_dir(rt.storage, Path(tmp), prefix)
    before = kept_checkpoints(ctx.job)
    earlier = [c for c in before if c["step"] < step]
    entry = {"step": step, "prefix": prefix, "manifest": manifest, "metrics": metrics or {},
             "created_at": int(time.time())}
    kept = (earlier + [entry])[-keep:]
    pointer = {**entry, **extra, "kept": kept}
    if rt.store.update(ctx.id, ctx.token, checkpoint=pointer,
                       event={"type": "log", "message": f"checkpoint at step {step}"}) != "ok":
        raise LeaseLost("lease lost before the checkpoint could be committed")
    ctx.job["checkpoint"] = pointer
    still = {c["prefix"] for c in kept}
    for old in before:
        if old["prefix"] not in still:
            delete_prefix(rt.storage, old["prefix"])
    return pointer


def load_checkpoint(ctx: JobContext, read: Callable[[Path, dict], int]) -> int:
    """Download the committed checkpoint, if any, and hand it to `read(dir, pointer)`;
    returns what `read` returns (the step or epoch to resume after), 0 when starting fresh."""
    pointer = ctx.job.get("checkpoint")
    if not pointer:
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        download_dir(ctx.rt.storage, pointer["prefix"], pointer["manifest"], Path(tmp))
        return read(Path(tmp), pointer)


def publish_model(ctx: JobContext, write: Callable[[Path], None]) -> tuple[str, dict]:
    """Upload a finished model to the attempt's model prefix; (prefix, manifest)."""
    prefix = model_prefix(ctx.id, ctx.job["epoch"])
    with tempfile.TemporaryDirectory() as tmp:
        write(Path(tmp))
        manifest = upload_dir(ctx.rt.storage, Path(tmp), prefix)
    return prefix, manifest


def register_model(ctx: JobContext, model_id: str, kind: str, base: str, prefix: str, manifest: dict,
                   output: dict, info: dict | None = None, checkpoints: list[tuple[str, dict, dict]] = ()) -> dict:
    """Write the job's metrics.json (its output), then register the model: last, and only while
    still the lease holder; the model becomes usable when the job's succeeded status is written
    right after the task returns. The model supersedes the job's checkpoints, which are deleted.
    Returns the output."""
    ctx.put_artifact("metrics.json", json.dumps(output, indent=2).encode(), "application/json")
    ctx.check()
    if ctx.rt.store.update(ctx.id, ctx.token) != "ok":
        raise LeaseLost("lease lost before the model could be registered")
    registry = ModelRegistry(ctx.rt.redis)
    registry.add(model_id, ctx.job["owner"], kind, base, ctx.id, prefix, manifest, info)
    kept = {}
    for ckpt_id, ckpt, ckpt_info in checkpoints:
        weights = {name: meta for name, meta in ckpt["manifest"].items() if name != STATE_FILE}
        registry.add(ckpt_id, ctx.job["owner"], kind, base, ctx.id, ckpt["prefix"], weights, ckpt_info)
        kept[ckpt["prefix"]] = set(weights)
    # Every other checkpoint of the job goes, not only the committed one: a worker killed mid-upload
    # leaves a directory that no pointer ever named.
    for obj in ctx.rt.storage.list(checkpoints_dir(ctx.id)):
        if not any(obj.key.startswith(p + "/") and obj.key[len(p) + 1:] in names for p, names in kept.items()):
            ctx.rt.storage.delete(obj.key)
    return output
