"""The `gan.sample` task: images from a trained `gan:` or `vae:` model, of one class or of every class
when the model is conditional, the same seed giving the same images."""

from __future__ import annotations

import json

from celery import shared_task
from safetensors.torch import load_file

import torch

from core.errors import InvalidInput
from core.gan_schemas import image_file_name, size_choices
from core.image_classes import NoClass, class_from_prompt, class_index
from core.registry import ModelRegistry
from core.storage_dirs import download_dir
from models.dcgan import DCGANConfig, Generator, generate, latent, slerp, spread_labels
from models.image_grid import grid_png, single_pngs, zip_pngs
from tasks.runner import TRANSIENT, JobContext, run_batch
from workers.runtime import get_runtime


class LoadedGan:
    def __init__(self, generator: Generator, config: dict):
        self.generator, self.config = generator, config


def _load(name: str, owner: str) -> LoadedGan:
    rt = get_runtime()
    record = ModelRegistry(rt.redis).get(name, owner)
    # Verified against the manifest written at training time before anything is loaded.
    path = download_dir(rt.storage, record["prefix"], record["manifest"],
                        rt.settings.data_dir / "model-cache" / record["job_id"])
    config = json.loads((path / "config.json").read_text())
    net = DCGANConfig.from_dict(config)
    g = Generator(net.image_size, net.channels, net.nz, net.ngf, net.num_classes)
    g.load_state_dict(load_file(str(path / "generator.safetensors")))
    return LoadedGan(g.to(rt.device).eval(), config)


def load_gan(name: str, owner: str) -> LoadedGan:
    """The worker's shared copy of an owner's GAN, loaded on first use."""
    rt = get_runtime()
    if not ModelRegistry(rt.redis).exists(name, owner):  # deleted since submission: no cached copy either
        raise InvalidInput(f"Unknown GAN model {name!r}", param="input.model", code="model_not_found")
    return rt.models.get(("gan", owner, name), lambda: _load(name, owner))


def chosen_class(inp: dict, classes: list[str]) -> int | None:
    """The class index the request names (by `class` or `prompt`), None for every class.

    Validation resolved it at submission with the same functions; this is the worker's copy.
    """
    try:
        if inp.get("class") is not None:
            return class_index(classes, inp["class"])
        if inp.get("prompt") is not None:
            return class_from_prompt(classes, inp["prompt"])
    except NoClass as exc:
        raise InvalidInput(str(exc), param="input.class" if inp.get("class") is not None else "input.prompt") from None
    return None


def labels_for(inp: dict, config: dict, n: int) -> tuple[torch.Tensor | None, int | None]:
    """(class index per image, the class asked for): one class when named, else every class in
    turn; (None, None) for an unconditional model."""
    num_classes = int(config.get("num_classes") or 0)
    if not num_classes:
        return None, None
    chosen = chosen_class(inp, config["classes"])
    if chosen is None:
        return spread_labels(n, num_classes), None
    return torch.full((n,), chosen, dtype=torch.long), chosen


def _size(inp: dict, config: dict) -> int:
    size = int((inp.get("size") or f"{config['image_size']}x").split("x")[0])
    if f"{size}x{size}" not in size_choices(config["image_size"]):  # a model validation knew no size of
        raise InvalidInput(f"input.size must be one of {size_choices(config['image_size'])}", param="input.size")
    return size


def sample(ctx: JobContext, drawn: tuple[LoadedGan, torch.Tensor, list[bytes]] | None = None) -> dict:
    """drawn: this job's model, images and their PNGs, made with its batchmates' (_draw_together)."""
    inp = ctx.job["input"]
    gan = drawn[0] if drawn else load_gan(inp["model"], ctx.job["owner"])
    config, nz, n = gan.config, gan.config["nz"], inp["n"]
    labels, chosen = labels_for(inp, config, n)
    size = _size(inp, config)
    # No progress write here: the bar (0 of n images) was set at submission.
    images = drawn[1] if drawn else generate(gan.generator, latent(inp["seed"], n, nz), labels)
    if inp.get("image_files"):
        # The images API's path: each image once, as its own file (the pages show these); no
        # grid or zip of the same pixels, which cost as much again as the files.
        for i, png in enumerate(drawn[2] if drawn else single_pngs(images, size), start=1):
            ctx.put_artifact(image_file_name(i), png, "image/png")
    else:
        # Every class in turn: a grid as wide as the class list shows one class per column. The
        # grid is the page's overview, at the model's own size; the zip holds the size asked for.
        nrow = config["num_classes"] if labels is not None and chosen is None else None
        ctx.put_artifact("grid.png", grid_png(images, nrow=nrow), "image/png")
        ctx.put_artifact("samples.zip", zip_pngs(images, size=size), "application/zip")
    output = {"model": inp["model"], "n": n, "seed": inp["seed"], "image_size": config["image_size"],
              "size": f"{size}x{size}", "channels": config["channels"],
              "architecture": config.get("architecture", "dcgan")}
    if chosen is not None:
        output["class"] = config["classes"][chosen]
        output["class_index"] = chosen
    if inp.get("interpolate"):
        spec = inp["interpolate"]
        path = slerp(latent(inp["seed"], 1, nz)[0], latent(spec["to_seed"], 1, nz)[0], spec["steps"])
        path_labels = None if labels is None else labels[:1].repeat(spec["steps"])
        ctx.put_artifact("interpolation.png", grid_png(generate(gan.generator, path, path_labels), nrow=spec["steps"]),
                         "image/png")
        output["interpolation"] = {"from_seed": inp["seed"], **spec}
    # The digit score is the sampling page's diagnostic; API calls (image_files) skip its cost.
    if config.get("dataset") == "builtin:digits" and n >= 10 and not inp.get("image_files"):
        from models.digit_score import label_fidelity, score

        output["quality"] = score(images)
        if labels is not None:
            digits = torch.tensor([int(config["classes"][i]) for i in labels])
            output["quality"]["label_fidelity"] = label_fidelity(images, digits)
    ctx.finish_progress(n, "images")  # written with the succeeded status, in one round trip
    return output



def _draw_together(ctxs: list[JobContext]) -> dict[str, tuple[LoadedGan, torch.Tensor, list[bytes]]]:
    """The images API's jobs of a batch (each image stored as its own file) that share a model and a
    size: one generator pass and one encoding pass over all their images, which costs a fifth less
    per image than a job at a time (4 requests of 16 digits at 256 px). Each job keeps its own
    latents, so its images are the ones it would get alone (the generator runs in eval mode). A job
    that cannot be prepared here is left to sample(), which reports its own error."""
    groups: dict[tuple, list] = {}
    for ctx in ctxs:
        inp = ctx.job["input"]
        if not inp.get("image_files") or inp.get("interpolate"):
            continue
        try:
            gan = load_gan(inp["model"], ctx.job["owner"])
            labels, _ = labels_for(inp, gan.config, inp["n"])
            size = _size(inp, gan.config)
        except TRANSIENT:
            raise
        except Exception:  # noqa: BLE001 -- sample() raises it again as this job's own ending
            continue
        groups.setdefault((id(gan), size), []).append((ctx, gan, labels))
    drawn: dict = {}
    for (_, size), members in groups.items():
        if len(members) < 2:
            continue
        gan = members[0][1]
        z = torch.cat([latent(c.job["input"]["seed"], c.job["input"]["n"], gan.config["nz"]) for c, _, _ in members])
        labels = None if members[0][2] is None else torch.cat([lab for _, _, lab in members])
        images = generate(gan.generator, z, labels)
        pngs = single_pngs(images, size)
        at = 0
        for ctx, _, _ in members:
            n = ctx.job["input"]["n"]
            drawn[ctx.id] = (gan, images[at:at + n], pngs[at:at + n])
            at += n
    return drawn


def sample_many(ctxs: list[JobContext]) -> dict:
    """Each job of a batch in turn; one job's failure is its own, never its batchmates'."""
    outcomes: dict = {}
    drawn = _draw_together(ctxs) if len(ctxs) > 1 else {}
    for ctx in ctxs:
        try:
            outcomes[ctx.id] = sample(ctx, drawn.get(ctx.id))
        except TRANSIENT:
            raise  # Redis or storage away: the whole batch comes back, as a single job would
        except Exception as exc:  # noqa: BLE001 -- the runner turns each into that job's own ending
            outcomes[ctx.id] = exc
    return outcomes


@shared_task(name="gan.sample", bind=True, max_retries=None)
def gan_sample(self, job_id: str | None, batch_list: str | None = None) -> str:
    """Run `job_id` and the sampling jobs of the same model queued behind it (or, with no job id,
    the list's next ones)."""
    return run_batch(self, job_id, batch_list or "", sample_many, get_runtime().settings.generate_batch_jobs)
