"""The `gan.train` task: a DCGAN or a VAE, unconditional or class-conditional, on built-in digits or
an uploaded archive; a sample grid per epoch, checkpoints in storage, resume after a crash, and a
registered `gan:{short id}` or `vae:{short id}` model."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from celery import shared_task
from safetensors.torch import load_file, save_file

from core.archive_checks import image_members
from core.errors import AigcError, HandedOver, InvalidInput, NotFound
from core.files import FileStore
from core.gan_schemas import BUILTIN_DATASETS, IMAGE_MODEL_PREFIXES
from models import image_data
from models.dcgan import DCGANConfig, generate, latent
from models.gan_training import GanTrainConfig, GanTrainer
from models.vae import VaeTrainer
from models.image_grid import grid_png
from tasks.checkpoints import STATE_FILE, load_checkpoint, publish_model, register_model, save_checkpoint
from tasks.runner import JobContext, run_job

GRID_SAMPLES = 64  # the fixed latents each epoch's grid shows, so grids compare epoch to epoch
GRID_PER_CLASS = 8  # a conditional model's grid: one row per class, the same 8 latents in each row
SCORE_SAMPLES = 500
FIDELITY_PER_CLASS = 100  # a conditional digits model is asked for each digit this many times
METRIC_EVERY = 5  # steps between loss events


def model_id_for(job: dict) -> str:
    return f"{IMAGE_MODEL_PREFIXES[job['input'].get('architecture', 'dcgan')]}{job['id'][-8:]}"


def grid_name(epoch: int) -> str:
    return f"samples-epoch-{epoch:03d}.png"


def train_config(inp: dict, num_classes: int = 0) -> GanTrainConfig:
    net = DCGANConfig(inp["image_size"], inp["channels"], inp["nz"], inp["ngf"], inp["ndf"], num_classes)
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
                                       inp.get("max_images"), balanced=bool(inp.get("conditional")))
    except ValueError as exc:
        raise InvalidInput(f"input.dataset: {exc}", param="input.dataset") from None


def class_names(inp: dict, data: image_data.ImageSet) -> list[str]:
    """The classes a conditional run learns, in index order: the digits 0-9, or the archive's
    class folders sorted by name (natural order for numbered folders)."""
    if not inp.get("conditional"):
        return []
    if any(not label for label in data.labels):
        raise InvalidInput("conditional training needs every image in a class folder (class/image.png); "
                           "some are at the top of the archive", param="input.dataset")
    names = sorted(set(data.labels), key=lambda c: (0, int(c), c) if c.isascii() and c.isdigit() else (1, 0, c))
    if len(names) < 2:
        raise InvalidInput(f"conditional training needs at least 2 classes; the dataset has {names}",
                           param="input.dataset")
    return names


def grid_inputs(num_classes: int, seed: int, nz: int) -> tuple[torch.Tensor, torch.Tensor | None, int]:
    """(latents, labels, images per row) of the fixed grid each epoch shows: 8x8 samples, or for
    a conditional model one row per class with the same latents down each column."""
    if not num_classes:
        return latent(seed, GRID_SAMPLES, nz), None, 8
    z = latent(seed, GRID_PER_CLASS, nz).repeat(num_classes, 1, 1, 1)
    return z, torch.arange(num_classes).repeat_interleave(GRID_PER_CLASS), GRID_PER_CLASS


def _save_weights(trainer: GanTrainer | VaeTrainer, tmp: Path) -> None:
    for name, state in trainer.weights().items():
        save_file({k: v.contiguous() for k, v in state.items()}, str(tmp / f"{name}.safetensors"))


def _load_weights(trainer: GanTrainer | VaeTrainer, tmp: Path) -> None:
    trainer.load_weights({p.stem: load_file(str(p), device=str(trainer.device)) for p in tmp.glob("*.safetensors")})


def train(ctx: JobContext) -> dict:
    inp = ctx.job["input"]
    data = load_images(ctx)
    classes = class_names(inp, data)
    cfg = train_config(inp, len(classes))
    if len(data.images) < 2:
        raise InvalidInput("the dataset needs at least 2 readable images", param="input.dataset")
    labels = torch.tensor([classes.index(label) for label in data.labels]) if classes else None
    trainer_class = VaeTrainer if inp.get("architecture") == "vae" else GanTrainer
    trainer = trainer_class(cfg, data.images, ctx.rt.device, labels)
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
    fixed_z, fixed_labels, per_row = grid_inputs(len(classes), cfg.seed, cfg.net.nz)

    def on_step(step: int, metrics: dict) -> None:
        if not all(math.isfinite(metrics[name]) for name in trainer.METRICS):
            raise AigcError(f"the losses became non-finite at step {step}; lower lr", code="training_diverged")
        last.update({name: round(metrics[name], 4) for name in trainer.METRICS})
        if step % METRIC_EVERY == 0 or step == total:
            for name in trainer.METRICS:
                ctx.metric(name, step, round(metrics[name], 4))
        ctx.progress(step, total, "steps")

    for epoch in range(start_epoch, cfg.epochs):
        trainer.run_epoch(epoch, on_step)
        done = epoch + 1
        if done % inp["sample_every"] == 0 or done == cfg.epochs:
            ctx.put_artifact(grid_name(done), grid_png(generate(trainer.sampler, fixed_z, fixed_labels), nrow=per_row),
                             "image/png", publish=True)

        def write(tmp: Path, epochs_done: int = done) -> None:
            _save_weights(trainer, tmp)
            (tmp / STATE_FILE).write_bytes(trainer.state_bytes(epochs_done))
        save_checkpoint(ctx, done * trainer.steps_per_epoch, write, losses=dict(last))
        if ctx.draining.is_set() and done < cfg.epochs:
            # The worker is shutting down and the epoch's checkpoint is committed: hand over here.
            ctx.log(f"worker shutting down: handing over after epoch {done}")
            raise HandedOver(f"job {ctx.id}: the worker is shutting down")
    ctx.progress(total, total, "steps", force=True)
    ctx.check()
    return _finish(ctx, trainer, data, classes, last)


def _finish(ctx: JobContext, trainer: GanTrainer | VaeTrainer, data: image_data.ImageSet, classes: list[str],
            losses: dict) -> dict:
    inp, cfg = ctx.job["input"], trainer.cfg
    model_id = model_id_for(ctx.job)
    architecture = inp.get("architecture", "dcgan")
    # Class names: what a conditional model's index means; for an unconditional one, the folders seen.
    classes = classes or sorted({label for label in data.labels if label})
    info = {"architecture": architecture, "conditional": bool(cfg.net.num_classes), "classes": classes,
            "image_size": cfg.net.image_size, "channels": cfg.net.channels}
    config = {**cfg.net.to_dict(), **info, "dataset": inp["dataset"], "job_id": ctx.id}

    def write(tmp: Path) -> None:
        # The sampling weights (the EMA when there is one) under one name; G too, for fine-tuning later.
        save_file({k: v.contiguous() for k, v in trainer.sampler.state_dict().items()},
                  str(tmp / "generator.safetensors"))
        (tmp / "config.json").write_text(json.dumps(config, indent=2))
    prefix, manifest = publish_model(ctx, write)
    output = {"model": model_id, "architecture": architecture, "conditional": info["conditional"],
              "classes": classes, "epochs": cfg.epochs, "steps": trainer.total_steps,
              "images": len(data.images), "skipped_images": data.skipped,
              **{name: losses.get(name) for name in trainer.METRICS},
              "sampler": "ema" if getattr(trainer, "G_ema", None) is not None else
              ("decoder" if architecture == "vae" else "generator")}
    if inp["dataset"] == "builtin:digits":
        output["quality"] = digits_quality(trainer.sampler, cfg, classes if info["conditional"] else [])
    return register_model(ctx, model_id, "gan", inp["dataset"], prefix, manifest, output, info)


def digits_quality(sampler, cfg: GanTrainConfig, classes: list[str]) -> dict:
    """The digit score of samples; for a conditional model also its label fidelity: each class
    asked for FIDELITY_PER_CLASS times, the share the classifier reads as the digit asked for."""
    from models.digit_score import label_fidelity, score

    if not classes:
        return score(generate(sampler, latent(cfg.seed + 1, SCORE_SAMPLES, cfg.net.nz)))
    labels = torch.arange(len(classes)).repeat(FIDELITY_PER_CLASS)
    images = generate(sampler, latent(cfg.seed + 1, len(labels), cfg.net.nz), labels)
    digits = torch.tensor([int(classes[i]) for i in labels])  # class index -> the digit it names
    return {**score(images), "label_fidelity": label_fidelity(images, digits)}


@shared_task(name="gan.train", bind=True, max_retries=None)
def gan_train(self, job_id: str) -> str:
    return run_job(self, job_id, train)
