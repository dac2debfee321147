"""The `gan.train` task: DCGAN on built-in digits or an uploaded archive, a sample grid per epoch,
checkpoints in storage, resume after a crash, and a registered `gan:{short id}` model."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from celery import shared_task
from safetensors.torch import load_file, save_file

from core.archive_checks import image_members
from core.errors import AigcError, InvalidInput, NotFound
from core.files import FileStore
from core.gan_schemas import BUILTIN_DATASETS
from models import image_data
from models.dcgan import DCGANConfig, generate, latent
from models.gan_training import GanTrainConfig, GanTrainer
from models.image_grid import grid_png
from tasks.checkpoints import load_checkpoint, publish_model, register_model, save_checkpoint
from tasks.runner import JobContext, run_job

STATE_FILE = "training_state.pt"
GRID_SAMPLES = 64  # the fixed latents each epoch's grid shows, so grids compare epoch to epoch
SCORE_SAMPLES = 500
METRIC_EVERY = 5  # steps between loss events


def model_id_for(job: dict) -> str:
    return f"gan:{job['id'][-8:]}"


def grid_name(epoch: int) -> str:
    return f"samples-epoch-{epoch:03d}.png"


def train_config(inp: dict) -> GanTrainConfig:
    net = DCGANConfig(inp["image_size"], inp["channels"], inp["nz"], inp["ngf"], inp["ndf"])
    return GanTrainConfig(net=net, epochs=inp["epochs"], batch_size=inp["batch_size"], lr=inp["lr"],
                          beta1=inp["beta1"], seed=inp["seed"], ema_decay=inp["ema_decay"],
                          diffaugment=inp["diffaugment"], r1_gamma=inp["r1_gamma"],
                          label_smoothing=inp["label_smoothing"])


def load_images(ctx: JobContext) -> image_data.ImageSet:
    inp = ctx.job["input"]
    if inp["dataset"] in BUILTIN_DATASETS:
        images = image_data.digits(inp["image_size"], inp["channels"])
        if inp.get("max_images"):
            images.images, images.labels = images.images[:inp["max_images"]], images.labels[:inp["max_images"]]
        return images
    try:
        data = FileStore(ctx.rt.redis, ctx.rt.storage).read(inp["dataset"], ctx.job["owner"])
    except NotFound:
        raise InvalidInput(f"File {inp['dataset']!r} was deleted before training started",
                           param="input.dataset") from None
    try:
        # The archive's limits are checked again here: they hold whoever stored the file.
        return image_data.from_members(image_members(data), inp["image_size"], inp["channels"],
                                       inp.get("max_images"))
    except ValueError as exc:
        raise InvalidInput(f"input.dataset: {exc}", param="input.dataset") from None


def _save_weights(trainer: GanTrainer, tmp: Path) -> None:
    for name, state in trainer.weights().items():
        save_file({k: v.contiguous() for k, v in state.items()}, str(tmp / f"{name}.safetensors"))


def _load_weights(trainer: GanTrainer, tmp: Path) -> None:
    trainer.load_weights({p.stem: load_file(str(p), device=str(trainer.device)) for p in tmp.glob("*.safetensors")})


def train(ctx: JobContext) -> dict:
    inp = ctx.job["input"]
    data = load_images(ctx)
    cfg = train_config(inp)
    if len(data.images) < 2:
        raise InvalidInput("the dataset needs at least 2 readable images", param="input.dataset")
    trainer = GanTrainer(cfg, data.images, ctx.rt.device)
    total = trainer.total_steps

    last: dict = {}

    def read(tmp: Path, pointer: dict) -> int:
        _load_weights(trainer, tmp)
        last.update(pointer.get("losses") or {})
        epoch = trainer.load_state_bytes((tmp / STATE_FILE).read_bytes())
        ctx.log(f"resumed after epoch {epoch} (step {pointer['step']})")
        return epoch
    start_epoch = load_checkpoint(ctx, read)
    if start_epoch == 0:
        ctx.log(f"{len(data.images)} training images, {data.skipped} skipped as unreadable; "
                f"{trainer.steps_per_epoch} steps per epoch")
    ctx.progress(start_epoch * trainer.steps_per_epoch, total, "steps", force=True)
    fixed_z = latent(cfg.seed, GRID_SAMPLES, cfg.net.nz)

    def on_step(step: int, metrics: dict) -> None:
        if not (math.isfinite(metrics["loss_d"]) and math.isfinite(metrics["loss_g"])):
            raise AigcError(f"the losses became non-finite at step {step}; lower lr", code="training_diverged")
        last.update(loss_d=round(metrics["loss_d"], 4), loss_g=round(metrics["loss_g"], 4))
        if step % METRIC_EVERY == 0 or step == total:
            for name in ("loss_d", "loss_g"):
                ctx.rt.store.add_event(ctx.id, "metric", name=name, step=step, value=round(metrics[name], 4))
        ctx.progress(step, total, "steps")

    for epoch in range(start_epoch, cfg.epochs):
        trainer.run_epoch(epoch, on_step)
        done = epoch + 1
        if done % inp["sample_every"] == 0 or done == cfg.epochs:
            ctx.put_artifact(grid_name(done), grid_png(generate(trainer.sampler, fixed_z), nrow=8),
                             "image/png", publish=True)

        def write(tmp: Path, epochs_done: int = done) -> None:
            _save_weights(trainer, tmp)
            (tmp / STATE_FILE).write_bytes(trainer.state_bytes(epochs_done))
        save_checkpoint(ctx, done * trainer.steps_per_epoch, write, losses=dict(last))
    ctx.progress(total, total, "steps", force=True)
    ctx.check()
    return _finish(ctx, trainer, data, last)


def _finish(ctx: JobContext, trainer: GanTrainer, data: image_data.ImageSet, losses: dict) -> dict:
    inp, cfg = ctx.job["input"], trainer.cfg
    model_id = model_id_for(ctx.job)
    classes = sorted({label for label in data.labels if label})
    config = {**cfg.net.to_dict(), "dataset": inp["dataset"], "classes": classes, "job_id": ctx.id}

    def write(tmp: Path) -> None:
        # The sampling weights (the EMA when there is one) under one name; G too, for fine-tuning later.
        save_file({k: v.contiguous() for k, v in trainer.sampler.state_dict().items()},
                  str(tmp / "generator.safetensors"))
        (tmp / "config.json").write_text(json.dumps(config, indent=2))
    prefix, manifest = publish_model(ctx, write)
    output = {"model": model_id, "epochs": cfg.epochs, "steps": trainer.total_steps,
              "images": len(data.images), "skipped_images": data.skipped,
              "loss_d": losses.get("loss_d"), "loss_g": losses.get("loss_g"),
              "sampler": "ema" if trainer.G_ema is not None else "generator"}
    if inp["dataset"] == "builtin:digits":
        from models.digit_score import score

        output["quality"] = score(generate(trainer.sampler, latent(cfg.seed + 1, SCORE_SAMPLES, cfg.net.nz)))
    return register_model(ctx, model_id, "gan", inp["dataset"], prefix, manifest, output)


@shared_task(name="gan.train", bind=True, max_retries=None)
def gan_train(self, job_id: str) -> str:
    return run_job(self, job_id, train)
