"""DCGAN generator and discriminator (Radford et al. 2015, as in pytorch/examples dcgan), sized by their arguments."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

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

    def __post_init__(self):
        if self.image_size not in IMAGE_SIZES:
            raise ValueError(f"image_size must be one of {IMAGE_SIZES}")
        if self.channels not in (1, 3):
            raise ValueError("channels must be 1 or 3")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "DCGANConfig":
        return cls(**{k: int(data[k]) for k in ("image_size", "channels", "nz", "ngf", "ndf")})


def _doublings(image_size: int) -> int:
    """Stride-2 layers between the 4x4 start and the last layer: 2 for 32 px, 3 for 64 px."""
    return int(math.log2(image_size)) - 3


class Generator(nn.Module):
    """z (N, nz, 1, 1) -> image (N, channels, size, size) in [-1, 1]."""

    def __init__(self, image_size: int = 64, channels: int = 3, nz: int = 100, ngf: int = 64):
        super().__init__()
        mult = 2 ** _doublings(image_size)
        layers: list[nn.Module] = [nn.ConvTranspose2d(nz, ngf * mult, 4, 1, 0, bias=False),
                                   nn.BatchNorm2d(ngf * mult), nn.ReLU(True)]
        while mult > 1:
            layers += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(ngf * mult // 2), nn.ReLU(True)]
            mult //= 2
        layers += [nn.ConvTranspose2d(ngf, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)
        self.nz = nz

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z)


class Discriminator(nn.Module):
    """image -> one logit per image (no sigmoid: the loss takes logits, which is numerically safer)."""

    def __init__(self, image_size: int = 64, channels: int = 3, ndf: int = 64):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(channels, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True)]
        mult = 1
        for _ in range(_doublings(image_size)):
            layers += [nn.Conv2d(ndf * mult, ndf * mult * 2, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(ndf * mult * 2), nn.LeakyReLU(0.2, inplace=True)]
            mult *= 2
        layers += [nn.Conv2d(ndf * mult, 1, 4, 1, 0, bias=False)]
        self.main = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x).view(-1)


def weights_init(module: nn.Module) -> None:
    """The DCGAN paper's initialisation: N(0, 0.02) convolutions, N(1, 0.02) batch-norm scales."""
    name = type(module).__name__
    if "Conv" in name:
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif "BatchNorm" in name:
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def build(cfg: DCGANConfig) -> tuple[Generator, Discriminator]:
    g = Generator(cfg.image_size, cfg.channels, cfg.nz, cfg.ngf)
    d = Discriminator(cfg.image_size, cfg.channels, cfg.ndf)
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


@torch.inference_mode()
def generate(g: Generator, z: torch.Tensor, batch: int = 256) -> torch.Tensor:
    """Images in [-1, 1] on the CPU, in eval mode (batch norm from running statistics), so a
    seed gives the same images whatever else is in the batch."""
    was_training = g.training
    g.eval()
    device = next(g.parameters()).device
    try:
        return torch.cat([g(z[i:i + batch].to(device)).float().cpu() for i in range(0, len(z), batch)])
    finally:
        g.train(was_training)
