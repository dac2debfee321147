"""An offline quality score for digit GANs: a small classifier trained here on scikit-learn's digits
measures confidence, class coverage and a Fréchet distance in its feature space."""

from __future__ import annotations

import functools
import math
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.image_data import digits

SIZE = 32  # samples of any size are scored at 32x32
CONFIDENT = 0.9  # a sample counts as a recognisable digit at this softmax probability
COVERED_SHARE = 0.025  # a class is covered with a quarter of its uniform share (10%) of samples


class DigitNet(nn.Module):
    """Two conv blocks and a 64-wide feature layer: enough for 97%+ on held-out digits."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.features = nn.Sequential(nn.Flatten(), nn.Linear(32 * 4 * 4, 64), nn.ReLU())
        self.head = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = self.features(self.conv(x))
        return self.head(feats), feats


def _shift(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random shifts of up to 2 px: generated digits are rarely centred exactly like the originals."""
    dy, dx = (int(v) for v in torch.randint(-2, 3, (2,), generator=gen))
    return torch.roll(x, shifts=(dy, dx), dims=(2, 3))


@functools.lru_cache(maxsize=1)
def classifier(seed: int = 0, epochs: int = 12) -> tuple[DigitNet, float]:
    """(the trained classifier, its held-out accuracy); trained once per process, a few seconds on a CPU."""
    data = digits(SIZE)
    labels = torch.tensor([int(t) for t in data.labels])
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(labels), generator=gen)
    held = order[: len(order) // 5]
    train = order[len(order) // 5:]
    torch.manual_seed(seed)
    net = DigitNet()
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    for _ in range(epochs):
        perm = train[torch.randperm(len(train), generator=gen)]
        for i in range(0, len(perm), 64):
            idx = perm[i:i + 64]
            logits, _ = net(_shift(data.images[idx], gen))
            loss = F.cross_entropy(logits, labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval().requires_grad_(False)
    with torch.inference_mode():
        accuracy = (net(data.images[held])[0].argmax(1) == labels[held]).float().mean().item()
    return net, accuracy


def _to_grey32(images: torch.Tensor) -> torch.Tensor:
    x = images.float()
    if x.shape[1] == 3:
        x = x.mean(dim=1, keepdim=True)
    if x.shape[-1] != SIZE:
        x = F.interpolate(x, size=(SIZE, SIZE), mode="bilinear", align_corners=False, antialias=x.shape[-1] > SIZE)
    return x


def _predict(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    net, _ = classifier()  # trained outside inference mode
    with torch.inference_mode():
        logits, feats = net(_to_grey32(images))
    return F.softmax(logits, dim=1), feats


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^1/2), as in FID, on float64 statistics."""
    from scipy import linalg

    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    # Dead ReLU features make the covariances singular: nudge the diagonals, as FID code does.
    eps = np.eye(len(s_a)) * 1e-6
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        covmean = linalg.sqrtm((s_a + eps) @ (s_b + eps))
    value = float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a + s_b - 2 * covmean.real))
    return max(value, 0.0)


@functools.lru_cache(maxsize=1)
def _real_features() -> np.ndarray:
    _, feats = _predict(digits(SIZE).images)
    return feats.double().numpy()


def label_fidelity(images: torch.Tensor, labels: torch.Tensor) -> float:
    """The share of images the classifier assigns to the digit each was asked to be."""
    probs, _ = _predict(images)
    return round((probs.argmax(1) == labels.to(probs.device)).float().mean().item(), 4)


def score(images: torch.Tensor) -> dict:
    """Quality figures for generated digits (N, C, S, S) in [-1, 1]."""
    probs, feats = _predict(images)
    confidence, classes = probs.max(1)
    sure = confidence >= CONFIDENT
    # Coverage counts only recognisable digits: noise spread over every class covers none.
    counts = torch.bincount(classes[sure], minlength=10).double()
    share = counts / max(len(images), 1)
    spread = counts[counts > 0] / counts.sum() if counts.sum() else counts[:0]
    entropy = max(0.0, -(spread * spread.log()).sum().item() / math.log(10))
    _, accuracy = classifier()
    return {
        "samples": int(len(images)),
        "confident_share": round(sure.float().mean().item(), 4),
        "classes_covered": int((share >= COVERED_SHARE).sum().item()),
        # Of the confident samples: 1.0 is a perfectly even spread over the ten digits.
        "class_entropy": round(entropy, 4),
        "class_histogram": [int(c) for c in counts.tolist()],
        "frechet_distance": round(frechet_distance(feats.double().numpy(), _real_features()), 3),
        "classifier_accuracy": round(accuracy, 4),
    }
