"""The `text.finetune` task: train on an uploaded file, checkpoint to storage, resume after a crash.

Every weight trains, or only a LoRA adapter (models/lora.py): then checkpoints and the model hold
the adapter alone. Checkpoints go to `jobs/{id}/checkpoints/e{epoch}-step-NNNNNN/`; the record
points at the last one only after its upload is whole, and that pointer write is fenced by the
lease (an evicted worker's late checkpoint is never committed); the last KEEP_CHECKPOINTS are
kept and become models `{model}:ckpt-step-N` when the job succeeds. The final model goes to
`models/{job id}/` with a manifest of SHA-256 hashes and is registered as
`ft:{base}:{suffix}:{short id}`; its loss curve goes to a results file (step_metrics.csv).
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import torch
from celery import shared_task

from core.errors import AigcError, HandedOver, InvalidInput, JobPaused, NotFound
from core.files import FileStore
from core.finetune_data import parse_finetune
from core.finetune_names import checkpoint_model_id, kept_checkpoints, model_id_for, results_file_id
from core.schemas import LoraSettings
from models import lora as lora_models
from models.finetune import ExampleTooLong, FinetuneConfig, Trainer, build_blocks, split_blocks
from tasks.checkpoints import STATE_FILE, load_checkpoint, publish_model, register_model, save_checkpoint
from tasks.model_loading import load_fresh
from tasks.runner import JobContext, run_job

KEEP_CHECKPOINTS = 3  # as OpenAI keeps: the last three, each a usable model once the job succeeds
RESULTS_PURPOSE = "fine-tune-results"


def lora_settings(requested, parameters: int) -> dict | None:
    """The adapter to train, or None for every weight: as asked, else LoRA above the size threshold."""
    if requested is None and parameters <= lora_models.LORA_BY_DEFAULT_ABOVE:
        return None
    chosen = {**LoraSettings().model_dump(), **(requested or {})}
    if not chosen.pop("enabled"):
        return None
    return chosen


def _examples(ctx: JobContext, file_id: str | None, param: str) -> list[dict] | None:
    if file_id is None:
        return None
    files = FileStore(ctx.rt.redis, ctx.rt.storage)
    try:
        return parse_finetune(files.read(file_id, ctx.job["owner"]))
    except NotFound:
        raise InvalidInput(f"File {file_id!r} was deleted before training started", param=param) from None


def write_weights(model, tokenizer, adapter: bool, directory: Path) -> None:
    """What a checkpoint and the final model hold besides training state: the adapter alone for a
    LoRA run, else the weights and the tokenizer (a full model describes itself)."""
    if adapter:
        lora_models.save_adapter(model, directory)
    else:
        model.save_pretrained(directory, safe_serialization=True)
        tokenizer.save_pretrained(directory)


class Checkpointer:
    """Saves weights, tokenizer and training state under the job (see tasks.checkpoints)."""

    def __init__(self, ctx: JobContext, model, tokenizer, trainer: Trainer, adapter: bool):
        self.ctx, self.model, self.tokenizer, self.trainer = ctx, model, tokenizer, trainer
        self.adapter = adapter  # a LoRA run saves the adapter only
        self.first_valid_loss: float | None = None  # carried in the pointer, for the output
        self.metrics: dict = {}  # the latest train and valid loss, kept with each checkpoint

    def save(self, step: int) -> None:
        def write(tmp: Path) -> None:
            write_weights(self.model, self.tokenizer, self.adapter, tmp)
            (tmp / STATE_FILE).write_bytes(self.trainer.state_bytes(step))
        save_checkpoint(self.ctx, step, write, keep=KEEP_CHECKPOINTS, metrics={"step": step, **self.metrics},
                        first_valid_loss=self.first_valid_loss)

    def restore(self) -> int:
        """Load the committed checkpoint, if any; returns the step to resume after (0: fresh)."""
        def read(tmp: Path, pointer: dict) -> int:
            from safetensors.torch import load_file

            self.first_valid_loss = pointer.get("first_valid_loss")
            if self.adapter:
                lora_models.load_adapter_state(self.model, load_file(str(tmp / lora_models.ADAPTER_WEIGHTS)))
            else:
                # strict=False: tied weights (lm_head = wte) are stored once.
                self.model.load_state_dict(load_file(str(tmp / "model.safetensors")), strict=False)
            step = self.trainer.load_state_bytes((tmp / STATE_FILE).read_bytes())
            self.ctx.log(f"resumed from the checkpoint at step {step}")
            return step
        return load_checkpoint(self.ctx, read)


def _blocks(tokenizer, examples: list[dict], block: int, context: int, param: str):
    """The examples as training blocks; an example longer than the model reads fails the job,
    named by its line (OpenAI's check, which needs the model's tokenizer, so it runs here)."""
    try:
        return build_blocks(tokenizer, examples, block, context)
    except ExampleTooLong as exc:
        raise InvalidInput(f"{exc}; shorten or split it", param=param, code="too_many_tokens") from None


def finetune(ctx: JobContext) -> dict:
    inp, hp = ctx.job["input"], ctx.job["input"]["hyperparameters"]
    cfg = FinetuneConfig(**{k: v for k, v in hp.items() if k != "lora"})
    train_examples = _examples(ctx, inp["training_file"], "input.training_file")
    valid_examples = _examples(ctx, inp.get("validation_file"), "input.validation_file")

    tm = load_fresh(inp["base_model"], ctx.job["owner"], "input.base_model")
    model, tokenizer = tm.model, tm.tokenizer
    lora = lora_settings(hp.get("lora"), tm.parameter_count)
    if lora is not None:
        try:
            model = lora_models.with_lora(model, lora)
        except ValueError as exc:  # peft: no module of the model matches target_modules
            raise InvalidInput(f"LoRA cannot adapt this model: {exc}",
                               param="input.hyperparameters.lora.target_modules") from None
    block = min(cfg.block_size, tm.max_positions)
    blocks = _blocks(tokenizer, train_examples, block, tm.max_positions, "input.training_file")
    if valid_examples:
        train, valid = blocks, _blocks(tokenizer, valid_examples, block, tm.max_positions, "input.validation_file")
    else:
        train, valid = split_blocks(blocks, cfg.seed)
    torch.manual_seed(cfg.seed)
    trainer = Trainer(model, cfg, train, valid, tm.device)
    ckpt = Checkpointer(ctx, model, tokenizer, trainer, adapter=lora is not None)
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
        ckpt.metrics["train_loss"] = round(loss, 4)
        if step % 5 == 0 or step == trainer.total_steps:
            ctx.metric("train_loss", step, round(loss, 4))
        try:
            ctx.progress(step, trainer.total_steps, "steps")
        except HandedOver as stop:
            # Paused, or the worker is shutting down: checkpoint this very step, so nothing is lost.
            ckpt.save(step)
            paused = isinstance(stop, JobPaused)
            ctx.log(f"paused: checkpoint at step {step}" if paused
                    else f"worker shutting down: checkpoint at step {step}, handing over")
            raise

    def on_eval(step: int, value: float) -> None:
        last["valid"] = value
        ckpt.metrics["valid_loss"] = round(value, 4)
        ctx.metric("valid_loss", step, round(value, 4))

    train_loss = trainer.run(start, on_step, on_eval, ckpt.save)
    ctx.progress(trainer.total_steps, trainer.total_steps, "steps", force=True)
    ctx.check()

    model_id = model_id_for(ctx.job)

    prefix, manifest = publish_model(ctx, lambda tmp: write_weights(model, tokenizer, lora is not None, tmp))
    results = _results_file(ctx)
    output = {"model": model_id, "method": "lora" if lora else "full", "train_loss": round(train_loss, 4),
              "valid_loss": round(last["valid"], 4), "first_valid_loss": round(first_valid, 4),
              "steps": trainer.total_steps, "resumed_from_step": start, "train_blocks": int(train.shape[0]),
              "valid_blocks": int(trainer.valid_blocks.shape[0]),
              "trained_tokens": trainer.total_steps * trainer.tokens_per_step,
              "stored_bytes": sum(meta["bytes"] for meta in manifest.values()),
              "result_files": [results], **({"lora": lora} if lora else {})}
    info = {"adapter": lora} if lora else None
    checkpoints = [(checkpoint_model_id(ctx.job, c["step"]), c, info) for c in kept_checkpoints(ctx.job)]
    return register_model(ctx, model_id, "text", inp["base_model"], prefix, manifest, output, info, checkpoints)


def _results_file(ctx: JobContext) -> str:
    """The loss curve as OpenAI's results file: a CSV of step, train_loss, valid_loss (every point
    on record, earlier attempts' included), owned by the job's owner; returns its id."""
    points: dict[int, dict] = {}
    for event in ctx.rt.store.all_events(ctx.id):
        if event.get("type") == "metric":
            points.setdefault(event["step"], {})[event["name"]] = event["value"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["step", "train_loss", "valid_loss"])
    for step in sorted(points):
        writer.writerow([step, points[step].get("train_loss", ""), points[step].get("valid_loss", "")])
    data = out.getvalue().encode()
    ctx.put_artifact("step_metrics.csv", data, "text/csv")
    files = FileStore(ctx.rt.redis, ctx.rt.storage)
    return files.create(ctx.job["owner"], "step_metrics.csv", RESULTS_PURPOSE, data,
                        file_id=results_file_id(ctx.id))["id"]


@shared_task(name="text.finetune", bind=True, max_retries=None)
def text_finetune(self, job_id: str) -> str:
    return run_job(self, job_id, finetune)
