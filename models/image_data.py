"""GAN training images: scikit-learn's digits (shipped with the package) or an uploaded archive, as tensors in [-1, 1]."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Callable, Iterable

import torch
import torch.nn.functional as F


@dataclass
class ImageSet:
    images: torch.Tensor  # (N, C, S, S), float32 in [-1, 1]
    labels: list[str]  # class folder per image ("" when the archive has none); digits: "0".."9"
    skipped: int = 0  # members that could not be decoded


def _resize(x: torch.Tensor, size: int) -> torch.Tensor:
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                         antialias=x.shape[-1] > size)


def digits(image_size: int, channels: int = 1) -> ImageSet:
    """The 1,797 8x8 digits from scikit-learn, scaled up to image_size (white strokes on black)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    x = _resize(x, image_size).clamp(0, 1) * 2 - 1
    if channels == 3:
        x = x.repeat(1, 3, 1, 1)
    return ImageSet(x, [str(int(t)) for t in bunch.target])


def _decode(raw: bytes, image_size: int, channels: int) -> torch.Tensor:
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(io.BytesIO(raw)) as img:
            img = img.convert("L" if channels == 1 else "RGB")
            # Centre crop to a square, then resize: faces and objects keep their proportions.
            side = min(img.size)
            left, top = (img.width - side) // 2, (img.height - side) // 2
            img = img.crop((left, top, left + side, top + side)).resize((image_size, image_size),
                                                                        Image.Resampling.LANCZOS)
            data = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8)
    return data.view(image_size, image_size, channels).permute(2, 0, 1).float() / 127.5 - 1


def _label(path: PurePosixPath) -> str:
    return path.parts[-2] if len(path.parts) > 1 else ""


def _round_robin(members: list) -> list:
    """Members reordered one class at a time (a, b, c, a, b, c, ...), each class in archive order."""
    groups: dict[str, list] = {}
    for member in members:
        groups.setdefault(_label(member[0]), []).append(member)
    out, queues = [], [list(reversed(g)) for g in groups.values()]
    while queues:
        out += [q.pop() for q in queues]
        queues = [q for q in queues if q]
    return out


def from_members(members: Iterable[tuple[PurePosixPath, Callable[[], bytes]]], image_size: int, channels: int,
                 max_images: int | None = None, balanced: bool = False) -> ImageSet:
    """Images from an archive's image members, (path inside the archive, read its bytes) each, in
    archive order; a member in a folder is labelled with the folder's name.

    balanced: with max_images, take the classes in turn, so an archive sorted by folder still
    gives every class its share (what a conditional model needs).
    """
    from PIL import UnidentifiedImageError

    if balanced and max_images is not None:
        members = _round_robin(list(members))  # paths only: nothing is decoded until chosen
    tensors, labels, skipped = [], [], 0
    for path, read in members:
        if max_images is not None and len(tensors) >= max_images:
            break
        try:
            tensors.append(_decode(read(), image_size, channels))
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
            skipped += 1  # a corrupt image costs one sample, not the job
            continue
        labels.append(_label(path))
    if not tensors:
        raise ValueError("the archive holds no readable PNG or JPEG image")
    return ImageSet(torch.stack(tensors), labels, skipped)
