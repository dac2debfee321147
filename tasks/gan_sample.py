"""The `gan.sample` task: images from a trained `gan:` model, the same seed giving the same images."""

from __future__ import annotations

import json

from celery import shared_task
from safetensors.torch import load_file

from core.errors import InvalidInput
from core.registry import ModelRegistry
from core.storage_dirs import download_dir
from models.dcgan import DCGANConfig, Generator, generate, latent, slerp
from models.image_grid import grid_png, zip_pngs
from tasks.runner import JobContext, run_job
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
    g = Generator(net.image_size, net.channels, net.nz, net.ngf)
    g.load_state_dict(load_file(str(path / "generator.safetensors")))
    return LoadedGan(g.to(rt.device).eval(), config)


def load_gan(name: str, owner: str) -> LoadedGan:
    """The worker's shared copy of an owner's GAN, loaded on first use."""
    rt = get_runtime()
    if not ModelRegistry(rt.redis).exists(name, owner):  # deleted since submission: no cached copy either
        raise InvalidInput(f"Unknown GAN model {name!r}", param="input.model", code="model_not_found")
    return rt.models.get(("gan", owner, name), lambda: _load(name, owner))


def sample(ctx: JobContext) -> dict:
    inp = ctx.job["input"]
    gan = load_gan(inp["model"], ctx.job["owner"])
    nz = gan.config["nz"]
    ctx.progress(0, inp["n"], "images", force=True)
    images = generate(gan.generator, latent(inp["seed"], inp["n"], nz))
    ctx.put_artifact("grid.png", grid_png(images), "image/png")
    ctx.put_artifact("samples.zip", zip_pngs(images), "application/zip")
    output = {"model": inp["model"], "n": inp["n"], "seed": inp["seed"],
              "image_size": gan.config["image_size"], "channels": gan.config["channels"]}
    if inp.get("interpolate"):
        spec = inp["interpolate"]
        path = slerp(latent(inp["seed"], 1, nz)[0], latent(spec["to_seed"], 1, nz)[0], spec["steps"])
        ctx.put_artifact("interpolation.png", grid_png(generate(gan.generator, path), nrow=spec["steps"]), "image/png")
        output["interpolation"] = {"from_seed": inp["seed"], **spec}
    if gan.config.get("dataset") == "builtin:digits" and inp["n"] >= 10:
        from models.digit_score import score

        output["quality"] = score(images)
    ctx.progress(inp["n"], inp["n"], "images", force=True)
    return output


@shared_task(name="gan.sample", bind=True, max_retries=None)
def gan_sample(self, job_id: str) -> str:
    return run_job(self, job_id, sample)
