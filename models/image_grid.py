"""Images in [-1, 1] to PNG bytes: one grid for the page, or a zip of single images for download."""

from __future__ import annotations

import io
import math
import zipfile

import torch
from torchvision.utils import make_grid


def _png(array: torch.Tensor) -> bytes:
    """(C, H, W) uint8 -> PNG bytes."""
    from PIL import Image

    c = array.shape[0]
    img = Image.fromarray(array.permute(1, 2, 0).squeeze(-1).numpy() if c == 1 else array.permute(1, 2, 0).numpy(),
                          mode="L" if c == 1 else "RGB")
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False)  # deterministic bytes: same images, same file
    return buf.getvalue()


def _to_uint8(images: torch.Tensor) -> torch.Tensor:
    return ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def grid_png(images: torch.Tensor, nrow: int | None = None, scale: int = 2) -> bytes:
    """A square-ish grid with a 2 px border, scaled up so small images are visible on a page."""
    nrow = nrow or max(1, math.ceil(math.sqrt(len(images))))
    x = _to_uint8(images)
    if scale > 1:
        x = x.repeat_interleave(scale, dim=2).repeat_interleave(scale, dim=3)  # crisp pixels, no blur
    grid = make_grid(x, nrow=nrow, padding=2, pad_value=40)
    return _png(grid[:1] if images.shape[1] == 1 else grid)


def zip_pngs(images: torch.Tensor, prefix: str = "sample") -> bytes:
    x = _to_uint8(images)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for i, img in enumerate(x):
            # A fixed timestamp keeps the archive's bytes a function of the images alone.
            info = zipfile.ZipInfo(f"{prefix}-{i:04d}.png", date_time=(2020, 1, 1, 0, 0, 0))
            zf.writestr(info, _png(img))
    return buf.getvalue()
