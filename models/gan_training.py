"""DCGAN training, unconditional or class-conditional, with optional stabilisers (EMA generator,
DiffAugment, R1, one-sided label smoothing).

The batch order and every random draw are functions of (seed, epoch, step), so a run resumed
from a checkpoint continues exactly as the uninterrupted run would have.
"""

from __future__ import annotations

import copy
import io
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from models.dcgan import DCGANConfig, build
from models.diffaugment import augment, parse_policy
from models.precision import training_autocast


@dataclass(frozen=True, kw_only=True)
class GanTrainConfig:
    """How to train; no defaults here, the product's are declared once in core/gan_schemas.py."""

    net: DCGANConfig
    epochs: int
    batch_size: int
    lr: float
    beta1: float
    seed: int
    # Stabilisers. ema_decay: sample from an exponential moving average of G's weights, which
    # smooths the epoch-to-epoch wobble of adversarial training (0 turns it off).
    ema_decay: float
    # diffaugment: the same random colour/shift/cutout on real and fake images before D, so D
    # cannot memorise a small dataset ("" turns it off).
    diffaugment: str
    # r1_gamma: penalise D's gradient on real images (Mescheder et al. 2018), which keeps D from
    # growing sharp enough to starve G of gradient (0 turns it off).
    r1_gamma: float
    # label_smoothing: D's target for real images is 1 - this (one-sided: fakes stay 0), so D is
    # never rewarded for over-confidence.
    label_smoothing: float


def step_generator(seed: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed((int(seed) * 1_000_003 + step) % (2**63))


class EpochTrainer:
    """What every image trainer shares: the data on the device, whole batches, and an epoch order
    and per-step randomness that are functions of (seed, epoch, step), so a resumed run continues
    exactly as the uninterrupted one. A subclass builds its nets and defines step()."""

    METRICS: tuple[str, ...] = ()  # what the job charts, per step

    def __init__(self, cfg: GanTrainConfig, images: torch.Tensor, device: str | torch.device = "cpu",
                 labels: torch.Tensor | None = None):
        """labels: a class index per image, required when cfg.net.num_classes is set."""
        if len(images) < 2:
            raise ValueError("training needs at least 2 images")
        if cfg.net.num_classes and (labels is None or len(labels) != len(images)):
            raise ValueError("a conditional model needs a class index per training image")
        self.cfg, self.device = cfg, torch.device(device)
        self.images = images.to(self.device)
        self.labels = labels.to(self.device) if cfg.net.num_classes else None
        self.batch = min(cfg.batch_size, len(images))
        # Whole batches only: a last batch of one image would break batch norm's statistics.
        self.steps_per_epoch = len(images) // self.batch
        self.total_steps = self.steps_per_epoch * cfg.epochs

    def forward_precision(self):
        """bf16 autocast on a GPU, around forward passes and losses only: a backward pass run
        inside autocast re-casts its own matrix products too, which costs a conditional GAN most of
        its class signal (label fidelity about 0.55 against 0.95 in fp32)."""
        return training_autocast(self.device)

    def modules(self) -> list[torch.nn.Module]:
        """The nets that train (put in training mode each epoch)."""
        raise NotImplementedError

    def step(self, real: torch.Tensor, step: int, labels: torch.Tensor | None = None) -> dict[str, float]:
        raise NotImplementedError

    def epoch_order(self, epoch: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(int(self.cfg.seed) * 7919 + epoch)
        return torch.randperm(len(self.images), generator=gen)

    def run_epoch(self, epoch: int, on_step: Callable[[int, dict], None]) -> None:
        """Train one epoch; on_step(global step, metrics) after each step (it may raise to stop)."""
        for module in self.modules():
            module.train()
        order = self.epoch_order(epoch).to(self.device)
        for i in range(self.steps_per_epoch):
            step = epoch * self.steps_per_epoch + i + 1
            idx = order[i * self.batch:(i + 1) * self.batch]
            labels = self.labels[idx] if self.labels is not None else None
            on_step(step, self.step(self.images[idx], step, labels))


class GanTrainer(EpochTrainer):
    METRICS = ("loss_d", "loss_g")

    def __init__(self, cfg: GanTrainConfig, images: torch.Tensor, device: str | torch.device = "cpu",
                 labels: torch.Tensor | None = None):
        super().__init__(cfg, images, device, labels)
        torch.manual_seed(cfg.seed)  # weights_init draws from the global generator
        self.G, self.D = (m.to(self.device) for m in build(cfg.net))
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False) if cfg.ema_decay > 0 else None
        betas = (cfg.beta1, 0.999)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=cfg.lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=cfg.lr, betas=betas)
        self.policy = parse_policy(cfg.diffaugment)

    def modules(self) -> list[torch.nn.Module]:
        return [self.G, self.D]

    @property
    def sampler(self):
        """The generator to sample from: the EMA copy when there is one."""
        return self.G_ema if self.G_ema is not None else self.G

    def _aug(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        return augment(x, self.policy, gen) if self.policy else x

    def step(self, real: torch.Tensor, step: int, labels: torch.Tensor | None = None) -> dict[str, float]:
        """One D update and one G update; returns the losses and D's mean outputs.

        Conditional: the fakes take the real batch's labels, so D sees the same class mix on
        both sides and cannot tell real from fake by class frequency.
        """
        cfg = self.cfg
        gen = step_generator(cfg.seed, step)
        n = real.shape[0]
        z = torch.randn(n, cfg.net.nz, 1, 1, generator=gen).to(self.device)
        real_in = self._aug(real, gen)
        if cfg.r1_gamma > 0:
            real_in = real_in.detach().requires_grad_(True)
        with self.forward_precision():
            fake = self.G(z, labels)
            out_real = self.D(real_in, labels)
            target_real = torch.full_like(out_real, 1.0 - cfg.label_smoothing)
            loss_d_real = F.binary_cross_entropy_with_logits(out_real, target_real)
            out_fake = self.D(self._aug(fake.detach(), gen), labels)
            loss_d = loss_d_real + F.binary_cross_entropy_with_logits(out_fake, torch.zeros_like(out_fake))
        if cfg.r1_gamma > 0:
            (grad,) = torch.autograd.grad(out_real.sum(), real_in, create_graph=True)
            loss_d = loss_d + cfg.r1_gamma / 2 * grad.float().pow(2).flatten(1).sum(1).mean()
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()

        with self.forward_precision():
            out = self.D(self._aug(fake, gen), labels)
            loss_g = F.binary_cross_entropy_with_logits(out, torch.ones_like(out))
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        self._update_ema(step)
        return {"loss_d": loss_d.item(), "loss_g": loss_g.item(),
                "d_real": torch.sigmoid(out_real).mean().item(), "d_fake": torch.sigmoid(out_fake).mean().item()}

    @torch.no_grad()
    def _update_ema(self, step: int) -> None:
        if self.G_ema is None:
            return
        # Ramp the decay up so early samples are not dominated by the random initial weights.
        decay = min(self.cfg.ema_decay, (1 + step) / (10 + step))
        ema_params, params = list(self.G_ema.parameters()), list(self.G.parameters())
        torch._foreach_lerp_(ema_params, params, 1.0 - decay)
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
            b_ema.copy_(b)  # batch-norm statistics: the live ones

    # Checkpoints: weights go to safetensors by the caller; this is the rest of the state.
    def weights(self) -> dict[str, dict[str, torch.Tensor]]:
        out = {"generator": self.G.state_dict(), "discriminator": self.D.state_dict()}
        if self.G_ema is not None:
            out["generator_ema"] = self.G_ema.state_dict()
        return out

    def load_weights(self, weights: dict[str, dict[str, torch.Tensor]]) -> None:
        self.G.load_state_dict(weights["generator"])
        self.D.load_state_dict(weights["discriminator"])
        if self.G_ema is not None:
            self.G_ema.load_state_dict(weights["generator_ema"])

    def state_bytes(self, epoch: int) -> bytes:
        buf = io.BytesIO()
        torch.save({"epoch": epoch, "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict()}, buf)
        return buf.getvalue()

    def load_state_bytes(self, data: bytes) -> int:
        """Restore both optimisers; returns the number of epochs the state had finished."""
        # weights_only: tensors and plain containers, never code.
        state = torch.load(io.BytesIO(data), weights_only=True, map_location=self.device)
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        return int(state["epoch"])
