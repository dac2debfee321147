"""Differentiable augmentation (Zhao et al. 2020): the same random transforms on real and fake
images before the discriminator, so it cannot memorise a small dataset and gradients still reach G."""

from __future__ import annotations

import torch
import torch.nn.functional as F

POLICIES = ("color", "translation", "cutout")


def parse_policy(policy: str) -> tuple[str, ...]:
    parts = tuple(p.strip() for p in policy.split(",") if p.strip())
    unknown = [p for p in parts if p not in POLICIES]
    if unknown:
        raise ValueError(f"unknown DiffAugment policy {unknown[0]!r}; use a comma list of {', '.join(POLICIES)}")
    return parts


def _uniform(x: torch.Tensor, gen: torch.Generator, *shape: int) -> torch.Tensor:
    # Drawn on the CPU from the step's generator: a resumed run augments exactly as before.
    return torch.rand(x.shape[0], *shape, generator=gen).to(x.device, x.dtype)


def color(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    x = x + (_uniform(x, gen, 1, 1, 1) - 0.5)  # brightness
    if x.shape[1] > 1:  # saturation means nothing for grey images
        mean = x.mean(dim=1, keepdim=True)
        x = (x - mean) * (_uniform(x, gen, 1, 1, 1) * 2) + mean
    mean = x.mean(dim=[1, 2, 3], keepdim=True)
    return (x - mean) * (_uniform(x, gen, 1, 1, 1) + 0.5) + mean  # contrast


def translation(x: torch.Tensor, gen: torch.Generator, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by up to `ratio` of its size, filling with zeros."""
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-sh, sh + 1, (n, 1, 1), generator=gen).to(x.device)
    dx = torch.randint(-sw, sw + 1, (n, 1, 1), generator=gen).to(x.device)
    gb, gy, gx = torch.meshgrid(torch.arange(n, device=x.device), torch.arange(h, device=x.device),
                                torch.arange(w, device=x.device), indexing="ij")
    gy = (gy + dy + 1).clamp(0, h + 1)
    gx = (gx + dx + 1).clamp(0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1])  # the one-pixel zero border is what shifted-in pixels read
    return padded.permute(0, 2, 3, 1)[gb, gy, gx].permute(0, 3, 1, 2)


def cutout(x: torch.Tensor, gen: torch.Generator, ratio: float = 0.5) -> torch.Tensor:
    """Zero a random square of `ratio` of the image's size in each image."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    oy = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), generator=gen).to(x.device)
    ox = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), generator=gen).to(x.device)
    ys = torch.arange(h, device=x.device).view(1, h, 1)
    xs = torch.arange(w, device=x.device).view(1, 1, w)
    top, left = oy - ch // 2, ox - cw // 2
    inside = (ys >= top) & (ys < top + ch) & (xs >= left) & (xs < left + cw)
    return x * (~inside).unsqueeze(1).to(x.dtype)


_TRANSFORMS = {"color": color, "translation": translation, "cutout": cutout}


def augment(x: torch.Tensor, policy: tuple[str, ...], gen: torch.Generator) -> torch.Tensor:
    for name in policy:
        x = _TRANSFORMS[name](x, gen)
    return x
