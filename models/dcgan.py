"""DCGAN generator and discriminator (Radford et al. 2015, as in pytorch/examples dcgan), sized by their
arguments; class-conditional when given a number of classes (label embedding into G, projection D)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from models.precision import training_autocast

IMAGE_SIZES = (32, 64)


@dataclass(frozen=True)
class DCGANConfig:
    """Everything that fixes the networks' shapes; saved beside the weights as config.json.

    No defaults here: the product's are declared once, in core/gan_schemas.py.
    """

    image_size: int  # 32 or 64
    channels: int  # 1 (grey) or 3 (RGB)
    nz: int  # length of the latent vector
    ngf: int  # generator feature maps in the last layer
    ndf: int  # discriminator feature maps in the first layer
    # 0: unconditional. Otherwise G and D take a class index too (configs saved before
    # conditional models existed have no such field and load as 0).
    num_classes: int = 0

    def __post_init__(self):
        if self.image_size not in IMAGE_SIZES:
            raise ValueError(f"image_size must be one of {IMAGE_SIZES}")
        if self.channels not in (1, 3):
            raise ValueError("channels must be 1 or 3")
        if self.num_classes < 0 or self.num_classes == 1:
            raise ValueError("num_classes must be 0 (unconditional) or at least 2")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "DCGANConfig":
        return cls(**{k: int(data[k]) for k in ("image_size", "channels", "nz", "ngf", "ndf")},
                   num_classes=int(data.get("num_classes") or 0))


def _doublings(image_size: int) -> int:
    """Stride-2 layers between the 4x4 start and the last layer: 2 for 32 px, 3 for 64 px."""
    return int(math.log2(image_size)) - 3


class Generator(nn.Module):
    """z (N, nz, 1, 1) [and class indices (N,)] -> image (N, channels, size, size) in [-1, 1].

    Conditional: a learned embedding of the class (nz long) is concatenated to z, so the first
    layer sees both; the cheapest conditioning that works, and z keeps its meaning per class.
    """

    def __init__(self, image_size: int = 64, channels: int = 3, nz: int = 100, ngf: int = 64,
                 num_classes: int = 0):
        super().__init__()
        mult = 2 ** _doublings(image_size)
        self.num_classes = num_classes
        # Unconditional nets keep exactly the state-dict keys they always had.
        self.embed = nn.Embedding(num_classes, nz) if num_classes else None
        layers: list[nn.Module] = [nn.ConvTranspose2d(nz * (2 if num_classes else 1), ngf * mult, 4, 1, 0, bias=False),
                                   nn.BatchNorm2d(ngf * mult), nn.ReLU(True)]
        while mult > 1:
            layers += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(ngf * mult // 2), nn.ReLU(True)]
            mult //= 2
        layers += [nn.ConvTranspose2d(ngf, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)
        self.nz = nz

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            if labels is None:
                raise ValueError("a conditional generator needs a class index per latent")
            z = torch.cat([z, self.embed(labels).view(len(labels), -1, 1, 1)], dim=1)
        return self.main(z)


class Discriminator(nn.Module):
    """image [and class indices] -> one logit per image (no sigmoid: the loss takes logits, which is
    numerically safer).

    Conditional: a projection discriminator (Miyato & Koyama 2018): the logit gains the inner
    product of a class embedding with the pooled features. Unlike feeding D the label as extra
    input channels, this asks D "is this a real image of *this* class", which is what gives G its
    label fidelity.
    """

    def __init__(self, image_size: int = 64, channels: int = 3, ndf: int = 64, num_classes: int = 0):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(channels, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True)]
        mult = 1
        for _ in range(_doublings(image_size)):
            layers += [nn.Conv2d(ndf * mult, ndf * mult * 2, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(ndf * mult * 2), nn.LeakyReLU(0.2, inplace=True)]
            mult *= 2
        layers += [nn.Conv2d(ndf * mult, 1, 4, 1, 0, bias=False)]
        self.main = nn.Sequential(*layers)
        self.embed = nn.Embedding(num_classes, ndf * mult) if num_classes else None

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is None:
            return self.main(x).view(-1)
        if labels is None:
            raise ValueError("a conditional discriminator needs a class index per image")
        features = self.main[:-1](x)
        # The projection in fp32: under bf16 autocast these sums over every position and channel
        # round the class signal away (a conditional GAN trained so drew the asked digit about half
        # as often: label fidelity 0.56 against 0.97).
        pooled = features.float().sum(dim=(2, 3))
        return self.main[-1](features).float().view(-1) + (self.embed(labels).float() * pooled).sum(dim=1)


def weights_init(module: nn.Module) -> None:
    """The DCGAN paper's initialisation: N(0, 0.02) convolutions, N(1, 0.02) batch-norm scales."""
    name = type(module).__name__
    if "Conv" in name or name == "Embedding":
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif "BatchNorm" in name:
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def build(cfg: DCGANConfig) -> tuple[Generator, Discriminator]:
    g = Generator(cfg.image_size, cfg.channels, cfg.nz, cfg.ngf, cfg.num_classes)
    d = Discriminator(cfg.image_size, cfg.channels, cfg.ndf, cfg.num_classes)
    g.apply(weights_init)
    d.apply(weights_init)
    return g, d


def latent(seed: int, n: int, nz: int) -> torch.Tensor:
    """The latent vectors for a seed, drawn on the CPU so every device gets the same ones."""
    gen = torch.Generator().manual_seed(int(seed))
    return torch.randn(n, nz, 1, 1, generator=gen)


def slerp(a: torch.Tensor, b: torch.Tensor, steps: int) -> torch.Tensor:
    """Spherical interpolation from a to b: Gaussian latents keep their typical length on the way."""
    a_flat, b_flat = a.flatten(), b.flatten()
    cos = torch.dot(a_flat, b_flat) / (a_flat.norm() * b_flat.norm())
    omega = torch.arccos(cos.clamp(-1 + 1e-7, 1 - 1e-7))
    out = []
    for t in torch.linspace(0, 1, steps):
        if omega.abs() < 1e-4:
            out.append((1 - t) * a + t * b)
        else:
            out.append((torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega))
    return torch.stack(out)


def spread_labels(n: int, num_classes: int) -> torch.Tensor | None:
    """Class indices 0, 1, ..., k-1, 0, 1, ... for n samples (None for an unconditional net): a
    grid with k columns then shows one class per column."""
    return torch.arange(n) % num_classes if num_classes else None


@torch.inference_mode()
def generate(g: Generator, z: torch.Tensor, labels: torch.Tensor | None = None, batch: int = 256) -> torch.Tensor:
    """Images in [-1, 1] on the CPU, in eval mode (batch norm from running statistics), so a
    seed gives the same images whatever else is in the batch."""
    was_training = g.training
    g.eval()
    device = next(g.parameters()).device

    def part(i: int) -> torch.Tensor:
        y = None if labels is None else labels[i:i + batch].to(device)
        with training_autocast(device):
            return g(z[i:i + batch].to(device), y).float().cpu()
    try:
        return torch.cat([part(i) for i in range(0, len(z), batch)])
    finally:
        g.train(was_training)
