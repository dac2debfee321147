"""`aigc demo --gan`: through the running platform's queue, train a conditional DCGAN on the built-in
digits, print its quality score and label fidelity, sample a grid from it, then ask for a digit by prompt."""

from __future__ import annotations

import sys
import time

from aigc.client import Client, watch
from aigc.demo import _api_key
from core.config import Settings

# Tuned to finish well within ten minutes on two CPU cores (see README).
TRAINING = {"dataset": "builtin:digits", "conditional": True, "image_size": 32, "epochs": 40, "batch_size": 32, "ngf": 32,
            "ndf": 32, "nz": 100, "lr": 2e-4, "beta1": 0.5, "seed": 1, "sample_every": 5}


def run_gan_demo(epochs: int | None = None, out=sys.stdout) -> int:
    settings = Settings.from_env()
    client = Client(settings.api_url, _api_key(settings))
    started = time.monotonic()
    job = client.submit({"kind": "gan.train", "input": {**TRAINING, **({"epochs": epochs} if epochs else {})}})
    print(f"Training a conditional DCGAN on builtin:digits as job {job['id']}; watch the grids at "
          f"{settings.api_url}/jobs/{job['id']}", file=out)
    job = watch(client, job["id"])
    if job["status"] != "succeeded":
        print(f"Training ended {job['status']}: {job['error']}", file=out)
        return 1
    result, q = job["output"], job["output"]["quality"]
    print(f"Model {result['model']} after {result['steps']} steps in {time.monotonic() - started:.0f} s.", file=out)
    print(f"Digit score over {q['samples']} samples: {100 * q['confident_share']:.1f}% recognisable, "
          f"{q['classes_covered']}/10 digits covered, per digit {q['class_histogram']}, "
          f"Fréchet distance {q['frechet_distance']} (real digits score about 5).", file=out)
    print(f"Label fidelity: {100 * q['label_fidelity']:.1f}% of the digits asked for were drawn as asked "
          f"(chance: 10%).", file=out)
    sample = client.submit({"kind": "gan.sample", "input": {"model": result["model"], "n": 64, "seed": 1,
                                                            "interpolate": {"to_seed": 2, "steps": 8}}})
    sample = watch(client, sample["id"], interval_s=0.3)
    print(f"Samples: {settings.api_url}/jobs/{sample['id']} (grid.png, samples.zip, interpolation.png; "
          f"a column per digit)", file=out)
    images = client.request("POST", "/v1/images/generations", {
        "model": result["model"], "prompt": "a handwritten seven", "n": 4, "size": "256x256", "seed": 1})
    print(f"Asked for \"a handwritten seven\" (read as {images['data'][0]['revised_prompt']!r}): "
          f"{len(images['data'])} images at {images['size']}, first: {images['data'][0]['url']}", file=out)
    print(f"More on the Images page: {settings.api_url}/images?model={result['model']}", file=out)
    print(f"Done in {time.monotonic() - started:.0f} s.", file=out)
    return 0 if sample["status"] == "succeeded" else 1
