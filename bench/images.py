"""Images from prompts: label fidelity of a conditional DCGAN and a conditional VAE trained through the
platform on the built-in digits, and images/s of /v1/images/generations against the same sampling in
process."""

from __future__ import annotations

import base64
import json
import statistics
import threading
import time

import torch
from safetensors.torch import load_file

from bench.device import DEVICE
from bench.stack import Stack
from models.dcgan import DCGANConfig, Generator, generate, latent
from models.image_grid import single_pngs

# The README's run: gan.train's defaults but for these (a 2-core CPU finishes each in about a minute).
TRAIN = {"dataset": "builtin:digits", "conditional": True, "epochs": 30, "ngf": 32, "ndf": 32, "seed": 0}
N, SIZE, PROMPTS = 16, 256, ("a handwritten seven", "3", "七", "zero", "eight", "two")
CLIENTS, REQUESTS, ROUNDS = 4, 48, 3


def _train(stack: Stack, architecture: str) -> dict:
    job = stack.call("POST", "/v1/jobs", {"kind": "gan.train", "input": {**TRAIN, "architecture": architecture}})
    started = time.perf_counter()
    done = stack.wait_job(job["id"], 900, poll_s=0.5)
    q = done["output"]["quality"]
    return {"model": done["output"]["model"], "seconds": round(time.perf_counter() - started, 1),
            "label_fidelity": q["label_fidelity"], "confident_share": q["confident_share"],
            "classes_covered": q["classes_covered"], "frechet_distance": q["frechet_distance"],
            "job_id": done["id"]}


def _load_generator(stack: Stack, job_id: str) -> tuple[Generator, list[str]]:
    """The registered generator, read from the stack's local store as a worker would load it."""
    [path] = [p for p in stack.data.rglob("generator.safetensors") if job_id in p.parts and "model-cache" not in p.parts]
    config = json.loads((path.parent / "config.json").read_text())
    net = DCGANConfig.from_dict(config)
    g = Generator(net.image_size, net.channels, net.nz, net.ngf, net.num_classes)
    g.load_state_dict(load_file(str(path)))
    return g.to(DEVICE).eval(), config["classes"]


def _in_process(g: Generator, classes: list[str], requests: int) -> float:
    """Images/s of the same work in a plain loop: sample 16 of a class, scale to 256x256, encode each
    PNG and base64 it (what the API's b64_json answer holds)."""
    start = time.perf_counter()
    for i in range(requests):
        labels = torch.full((N,), i % len(classes), dtype=torch.long)
        images = generate(g, latent(i, N, g.nz), labels)
        [base64.b64encode(png) for png in single_pngs(images, SIZE)]
    return requests * N / (time.perf_counter() - start)


def _through_api(stack: Stack, model: str, requests: int, clients: int) -> float:
    """Images/s of images.generate (b64_json) from `clients` concurrent callers."""
    errors: list[str] = []

    def call(k: int) -> None:
        for i in range(k, requests, clients):
            body = {"model": model, "prompt": PROMPTS[i % len(PROMPTS)], "n": N, "size": f"{SIZE}x{SIZE}",
                    "response_format": "b64_json", "seed": i}
            out = stack.call("POST", "/v1/images/generations", body, timeout_s=120)
            if len(out["data"]) != N:
                errors.append(f"request {i}: {len(out['data'])} images")
    start = time.perf_counter()
    threads = [threading.Thread(target=call, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError("; ".join(errors))
    return requests * N / (time.perf_counter() - start)


def run() -> dict:
    with Stack() as stack:
        trained = {arch: _train(stack, arch) for arch in ("dcgan", "vae")}
        g, classes = _load_generator(stack, trained["dcgan"]["job_id"])
        model = trained["dcgan"]["model"]
        _through_api(stack, model, CLIENTS, CLIENTS)  # warm-up: the worker loads the model once
        _in_process(g, classes, 2)
        plain, api, api_one = [], [], []
        for _ in range(ROUNDS):  # interleaved, so drift in machine load hits both sides alike
            plain.append(_in_process(g, classes, REQUESTS))
            api.append(_through_api(stack, model, REQUESTS, CLIENTS))
            api_one.append(_through_api(stack, model, REQUESTS // 2, 1))
    rate = {name: round(statistics.median(v), 1) for name, v in
            (("plain", plain), ("api", api), ("api_one_client", api_one))}
    return {
        "config": {**TRAIN, "n": N, "size": f"{SIZE}x{SIZE}", "clients": CLIENTS, "requests_per_round": REQUESTS,
                   "rounds": ROUNDS, "threads": torch.get_num_threads()},
        "dcgan": trained["dcgan"], "vae": trained["vae"],
        "plain_images_per_s": rate["plain"], "api_images_per_s": rate["api"],
        "api_one_client_images_per_s": rate["api_one_client"],
        "ratios": {"images_api_vs_plain": round(rate["api"] / rate["plain"], 3),
                   "images_api_one_client_vs_plain": round(rate["api_one_client"] / rate["plain"], 3),
                   "label_fidelity_dcgan": trained["dcgan"]["label_fidelity"],
                   "label_fidelity_vae": trained["vae"]["label_fidelity"]},
        "measured": f"images.generate (b64_json, n={N}, {SIZE}x{SIZE}) from {CLIENTS} concurrent clients, and from "
                    "one, against the same sampling, upscaling and PNG encoding in a plain loop; median of "
                    "interleaved rounds. Label fidelity: 100 samples of each digit read back by the digit "
                    "classifier, from a model trained through the platform.",
    }


def rows(r: dict) -> list[str]:
    out = []
    for arch in ("dcgan", "vae"):
        t = r[arch]
        out.append(f"| conditional {arch} on the digits ({TRAIN['epochs']} epochs, {t['seconds']} s): label fidelity "
                   f"{t['label_fidelity']}, recognisable {t['confident_share']}, {t['classes_covered']}/10 covered, "
                   f"Fréchet {t['frechet_distance']} | | | |")
    out.append(f"| images.generate, n={N} at {SIZE}px: {CLIENTS} clients (one client: "
               f"{r['api_one_client_images_per_s']} img/s) vs sampling + PNG in process | "
               f"{r['plain_images_per_s']} img/s | {r['api_images_per_s']} img/s | "
               f"{r['ratios']['images_api_vs_plain']}x |")
    return out
