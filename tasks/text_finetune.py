"""The `text.finetune` task: train on an uploaded file, checkpoint to storage, resume after a crash.

Checkpoints go to `jobs/{id}/checkpoints/step-NNNNNN/`; the record points at the last one only
after its upload is whole, and that pointer write is fenced by the lease (an evicted worker's
late checkpoint is never committed). The final model goes to `models/{job id}/` with a manifest
of SHA-256 hashes and is registered as `ft:{base}:{suffix}:{short id}`.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from celery import shared_task

from core.errors import AigcError, HandedOver, InvalidInput, NotFound
from core.file_checks import parse_finetune
from core.files import FileStore
from models.finetune import FinetuneConfig, Trainer, build_blocks, split_blocks
from tasks.checkpoints import load_checkpoint, publish_model, register_model, save_checkpoint
from tasks.model_loading import load_fresh
from tasks.runner import JobContext, run_job

STATE_FILE = "training_state.pt"


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
    """Saves weights, tokenizer and training state under the job (see tasks.checkpoints)."""

    def __init__(self, ctx: JobContext, model, tokenizer, trainer: Trainer):
        self.ctx, self.model, self.tokenizer, self.trainer = ctx, model, tokenizer, trainer
        self.first_valid_loss: float | None = None  # carried in the pointer, for the output

    def save(self, step: int) -> None:
        def write(tmp: Path) -> None:
            self.model.save_pretrained(tmp, safe_serialization=True)
            self.tokenizer.save_pretrained(tmp)  # a checkpoint describes itself
            (tmp / STATE_FILE).write_bytes(self.trainer.state_bytes(step))
        save_checkpoint(self.ctx, step, write, first_valid_loss=self.first_valid_loss)

    def restore(self) -> int:
        """Load the committed checkpoint, if any; returns the step to resume after (0: fresh)."""
        def read(tmp: Path, pointer: dict) -> int:
            from safetensors.torch import load_file

            self.first_valid_loss = pointer.get("first_valid_loss")
            # strict=False: tied weights (lm_head = wte) are stored once.
            self.model.load_state_dict(load_file(str(tmp / "model.safetensors")), strict=False)
            step = self.trainer.load_state_bytes((tmp / STATE_FILE).read_bytes())
            self.ctx.log(f"resumed from the checkpoint at step {step}")
            return step
        return load_checkpoint(self.ctx, read)


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
    ctx.can_hand_over = True  # any step can checkpoint (see on_step)
    if ckpt.first_valid_loss is None:
        ckpt.first_valid_loss = trainer.evaluate()
        ctx.metric("valid_loss", 0, round(ckpt.first_valid_loss, 4))
    first_valid = ckpt.first_valid_loss
    ctx.progress(start, trainer.total_steps, "steps", force=True)
    last = {"valid": first_valid}

    def on_step(step: int, loss: float) -> None:
        if not math.isfinite(loss):
            raise AigcError(f"training loss became {loss} at step {step}; lower the learning rate",
                            code="training_diverged")
        if step % 5 == 0 or step == trainer.total_steps:
            ctx.metric("train_loss", step, round(loss, 4))
        try:
            ctx.progress(step, trainer.total_steps, "steps")
        except HandedOver:
            # The worker is shutting down: checkpoint this very step, so the next worker loses none.
            ckpt.save(step)
            ctx.log(f"worker shutting down: checkpoint at step {step}, handing over")
            raise

    def on_eval(step: int, value: float) -> None:
        last["valid"] = value
        ctx.metric("valid_loss", step, round(value, 4))

    train_loss = trainer.run(start, on_step, on_eval, ckpt.save)
    ctx.progress(trainer.total_steps, trainer.total_steps, "steps", force=True)
    ctx.check()

    model_id = model_id_for(ctx.job)

    def write(tmp: Path) -> None:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
    prefix, manifest = publish_model(ctx, write)
    output = {"model": model_id, "train_loss": round(train_loss, 4), "valid_loss": round(last["valid"], 4),
              "first_valid_loss": round(first_valid, 4), "steps": trainer.total_steps,
              "resumed_from_step": start, "train_blocks": int(train.shape[0]),
              "valid_blocks": int(trainer.valid_blocks.shape[0])}
    return register_model(ctx, model_id, "text", inp["base_model"], prefix, manifest, output)


@shared_task(name="text.finetune", bind=True, max_retries=None)
def text_finetune(self, job_id: str) -> str:
    return run_job(self, job_id, finetune)
