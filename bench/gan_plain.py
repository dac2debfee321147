"""GAN training throughput: the platform's trainer against a plain pytorch/examples-style DCGAN loop, same configuration."""

from __future__ import annotations

import dataclasses
import statistics
import time

import torch
from torch import nn

from models.dcgan import DCGANConfig, build
from models.gan_training import GanTrainConfig, GanTrainer
from models.image_data import digits
from core.gan_schemas import OPTIMISER_DEFAULTS, GanTrainInput
from core.shapes import defaults

# The trainer as a user gets it (lr, beta1, stabilisers): the defaults gan.train declares for a dcgan.
PRODUCT_DEFAULTS = {**defaults(GanTrainInput), **OPTIMISER_DEFAULTS["dcgan"]}
TRAINER_FIELDS = {f.name for f in dataclasses.fields(GanTrainConfig)}

NET = DCGANConfig(image_size=32, channels=1, nz=100, ngf=32, ndf=32)
BATCH, STEPS, ROUNDS = 64, 32, 5


class _PlainLoop:
    """The pytorch/examples dcgan main loop: sigmoid D, BCELoss, labels 1/0, Adam(2e-4, 0.5)."""

    def __init__(self, images: torch.Tensor):
        torch.manual_seed(0)
        self.G, d = build(NET)
        self.D = nn.Sequential(d, nn.Sigmoid())
        self.criterion = nn.BCELoss()
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.images = images

    def run(self, steps: int) -> None:
        perm = torch.randperm(len(self.images))
        per_epoch = len(self.images) // BATCH
        for i in range(steps):
            j = i % per_epoch
            real = self.images[perm[j * BATCH:(j + 1) * BATCH]]
            self.D.zero_grad()
            out = self.D(real)
            err_real = self.criterion(out, torch.full_like(out, 1.0))
            err_real.backward()
            fake = self.G(torch.randn(BATCH, NET.nz, 1, 1))
            out = self.D(fake.detach())
            err_fake = self.criterion(out, torch.full_like(out, 0.0))
            err_fake.backward()
            self.opt_d.step()
            self.G.zero_grad()
            out = self.D(fake)
            err_g = self.criterion(out, torch.full_like(out, 1.0))
            err_g.backward()
            self.opt_g.step()
            err_real.item(), err_fake.item(), err_g.item()  # the example prints them every step


class _Platform:
    def __init__(self, images: torch.Tensor, **options):
        settings = {k: v for k, v in PRODUCT_DEFAULTS.items() if k in TRAINER_FIELDS}
        cfg = GanTrainConfig(**{**settings, "net": NET, "batch_size": BATCH, "epochs": 1000, **options})
        self.trainer = GanTrainer(cfg, images)
        self.epoch = 0

    def run(self, steps: int) -> None:
        done = 0

        class Stop(Exception):
            pass

        def on_step(_step, _metrics):
            nonlocal done
            done += 1
            if done >= steps:
                raise Stop
        try:
            self.trainer.run_epoch(self.epoch, on_step)
        except Stop:
            pass
        self.epoch += 1


def _images_per_s(loop, steps: int) -> float:
    start = time.perf_counter()
    loop.run(steps)
    return steps * BATCH / (time.perf_counter() - start)


def run() -> dict:
    images = digits(NET.image_size).images
    same = {"ema_decay": 0.0, "diffaugment": "", "r1_gamma": 0.0, "label_smoothing": 0.0}
    loops = {"plain": _PlainLoop(images), "platform": _Platform(images, **same),
             "platform_defaults": _Platform(images)}
    for loop in loops.values():
        loop.run(3)  # warm-up: allocator, kernels
    samples = {name: [] for name in loops}
    for _ in range(ROUNDS):  # interleaved, so drift in machine load hits every side alike
        for name, loop in loops.items():
            samples[name].append(_images_per_s(loop, STEPS))
    rate = {name: round(statistics.median(v), 1) for name, v in samples.items()}
    return {
        "config": {**NET.to_dict(), "batch_size": BATCH, "steps_per_round": STEPS, "rounds": ROUNDS,
                   "dataset": "builtin:digits", "threads": torch.get_num_threads()},
        "plain_images_per_s": rate["plain"], "platform_images_per_s": rate["platform"],
        "platform_default_stabilisers_images_per_s": rate["platform_defaults"],
        "ratios": {"gan_vs_plain": round(rate["platform"] / rate["plain"], 3)},
        "measured": "the platform's GanTrainer loop in process (stabilisers off, as in the plain loop) "
                    "against the pytorch/examples dcgan loop; median of interleaved rounds",
    }


def rows(g: dict) -> list[str]:
    c = g["config"]
    return [f"| DCGAN training ({c['image_size']}px digits, ngf/ndf {c['ngf']}, batch {c['batch_size']}): the "
            f"platform's trainer vs the pytorch/examples loop (with the default stabilisers: "
            f"{g['platform_default_stabilisers_images_per_s']} img/s) | {g['plain_images_per_s']} img/s | "
            f"{g['platform_images_per_s']} img/s | {g['ratios']['gan_vs_plain']}x |"]
