"""The `text.finetune` task: train on an uploaded file, checkpoint to storage, resume after a crash.

Checkpoints go to `jobs/{id}/checkpoints/step-NNNNNN/`; the record points at the last one only
after its upload is whole, and that pointer write is fenced by the lease (an evicted worker's
late checkpoint is never committed). The final model goes to `models/{job id}/` with a manifest
of SHA-256 hashes and is registered as `ft:{base}:{suffix}:{short id}`.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import torch
from celery import shared_task

from core.errors import AigcError, InvalidInput, LeaseLost, NotFound
from core.file_checks import parse_finetune
from core.files import FileStore
from core.registry import ModelRegistry, model_prefix
from core.storage_dirs import download_dir, upload_dir
from models.finetune import FinetuneConfig, Trainer, build_blocks, split_blocks
from tasks.model_loading import load_fresh
from tasks.runner import JobContext, run_job

STATE_FILE = "training_state.pt"


def checkpoint_prefix(job_id: str, epoch: int, step: int) -> str:
    # The attempt's epoch is in the name: a late upload from a worker that lost its lease
    # lands beside the committed checkpoint, never on top of it.
    return f"jobs/{job_id}/checkpoints/e{epoch}-step-{step:06d}"


def model_id_for(job: dict) -> str:
    inp = job["input"]
    return f"ft:{inp['base_model']}:{inp['suffix']}:{job['id'][-8:]}"


def _examples(ctx: JobContext, file_id: str | None, param: str) -> list[dict] | None:
    if file_id is None:
        return None
    files = FileStore(ctx.rt.redis, ctx.rt.storage)
    try:
        return parse_finetune(files.read(file_id, ctx.job["owner"]))
    except NotFound:
        raise InvalidInput(f"File {file_id!r} was deleted before training started", param=param) from None


class Checkpointer:
    """Saves weights and training state under the job, then commits the pointer (fenced)."""

    def __init__(self, ctx: JobContext, model, tokenizer, trainer: Trainer):
        self.ctx, self.model, self.tokenizer, self.trainer = ctx, model, tokenizer, trainer
        self.first_valid_loss: float | None = None  # carried in the pointer, for the output

    def save(self, step: int) -> None:
        rt, job_id = self.ctx.rt, self.ctx.id
        prefix = checkpoint_prefix(job_id, self.ctx.job["epoch"], step)
        with tempfile.TemporaryDirectory() as tmp:
            self.model.save_pretrained(tmp, safe_serialization=True)
            self.tokenizer.save_pretrained(tmp)  # a checkpoint describes itself
            Path(tmp, STATE_FILE).write_bytes(self.trainer.state_bytes(step))
            manifest = upload_dir(rt.storage, Path(tmp), prefix)
        previous = (self.ctx.job.get("checkpoint") or {}).get("prefix")
        pointer = {"step": step, "prefix": prefix, "manifest": manifest,
                   "first_valid_loss": self.first_valid_loss}
        if rt.store.update(job_id, self.ctx.token, checkpoint=pointer,
                           event={"type": "log", "message": f"checkpoint at step {step}"}) != "ok":
            raise LeaseLost("lease lost before the checkpoint could be committed")
        self.ctx.job["checkpoint"] = pointer
        if previous != prefix:  # keep only the last committed checkpoint
            _delete_prefix(rt.storage, previous)

    def restore(self) -> int:
        """Load the committed checkpoint, if any; returns the step to resume after (0: fresh)."""
        pointer = self.ctx.job.get("checkpoint")
        if not pointer:
            return 0
        self.first_valid_loss = pointer.get("first_valid_loss")
        with tempfile.TemporaryDirectory() as tmp:
            download_dir(self.ctx.rt.storage, pointer["prefix"], pointer["manifest"], Path(tmp))
            from safetensors.torch import load_file

            state = load_file(str(Path(tmp) / "model.safetensors"))
            # strict=False: tied weights (lm_head = wte) are stored once.
            self.model.load_state_dict(state, strict=False)
            step = self.trainer.load_state_bytes(Path(tmp, STATE_FILE).read_bytes())
        self.ctx.log(f"resumed from the checkpoint at step {step}")
        return step


def finetune(ctx: JobContext) -> dict:
    inp, hp = ctx.job["input"], ctx.job["input"]["hyperparameters"]
    cfg = FinetuneConfig(**hp)
    train_examples = _examples(ctx, inp["training_file"], "input.training_file")
    valid_examples = _examples(ctx, inp.get("validation_file"), "input.validation_file")

    tm = load_fresh(inp["base_model"], ctx.job["owner"], "input.base_model")
    model, tokenizer = tm.model, tm.tokenizer
    block = min(cfg.block_size, tm.max_positions)
    blocks = build_blocks(tokenizer, train_examples, block)
    if valid_examples:
        train, valid = blocks, build_blocks(tokenizer, valid_examples, block)
    else:
        train, valid = split_blocks(blocks, cfg.seed)
    torch.manual_seed(cfg.seed)
    trainer = Trainer(model, cfg, train, valid, tm.device)
    ckpt = Checkpointer(ctx, model, tokenizer, trainer)
    start = ckpt.restore()
    if ckpt.first_valid_loss is None:
        ckpt.first_valid_loss = trainer.evaluate()
        ctx.rt.store.add_event(ctx.id, "metric", name="valid_loss", step=0, value=round(ckpt.first_valid_loss, 4))
    first_valid = ckpt.first_valid_loss
    ctx.progress(start, trainer.total_steps, "steps", force=True)
    last = {"valid": first_valid}

    def on_step(step: int, loss: float) -> None:
        if not math.isfinite(loss):
            raise AigcError(f"training loss became {loss} at step {step}; lower the learning rate",
                            code="training_diverged")
        if step % 5 == 0 or step == trainer.total_steps:
            ctx.rt.store.add_event(ctx.id, "metric", name="train_loss", step=step, value=round(loss, 4))
        ctx.progress(step, trainer.total_steps, "steps")

    def on_eval(step: int, value: float) -> None:
        last["valid"] = value
        ctx.rt.store.add_event(ctx.id, "metric", name="valid_loss", step=step, value=round(value, 4))

    train_loss = trainer.run(start, on_step, on_eval, ckpt.save)
    ctx.progress(trainer.total_steps, trainer.total_steps, "steps", force=True)
    ctx.check()

    model_id = model_id_for(ctx.job)
    prefix = model_prefix(ctx.id, ctx.job["epoch"])
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        manifest = upload_dir(ctx.rt.storage, Path(tmp), prefix)
    output = {"model": model_id, "train_loss": round(train_loss, 4), "valid_loss": round(last["valid"], 4),
              "first_valid_loss": round(first_valid, 4), "steps": trainer.total_steps,
              "resumed_from_step": start, "train_blocks": int(train.shape[0]),
              "valid_blocks": int(trainer.valid_blocks.shape[0])}
    ctx.put_artifact("metrics.json", json.dumps(output, indent=2).encode(), "application/json")
    # Register last, and only while still the lease holder; the model becomes usable when the
    # job's succeeded status is written right after this returns.
    ctx.check()
    if ctx.rt.store.update(ctx.id, ctx.token) != "ok":
        raise LeaseLost("lease lost before the model could be registered")
    ModelRegistry(ctx.rt.redis).add(model_id, ctx.job["owner"], "text", inp["base_model"], ctx.id, prefix,
                                    manifest)
    _delete_prefix(ctx.rt.storage, (ctx.job.get("checkpoint") or {}).get("prefix"))  # the model supersedes it
    return output


def _delete_prefix(storage, prefix: str | None) -> None:
    for obj in storage.list(prefix) if prefix else []:
        storage.delete(obj.key)


@shared_task(name="text.finetune", bind=True, max_retries=None)
def text_finetune(self, job_id: str) -> str:
    return run_job(self, job_id, finetune)
