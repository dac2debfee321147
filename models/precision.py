"""Mixed precision by device: bf16 autocast on CUDA for training and sampling; fp32 on the CPU."""

from __future__ import annotations

import contextlib

import torch


def training_autocast(device: torch.device | str):
    """bf16 autocast for a training or sampling forward pass on a GPU. Weights and optimiser state
    stay fp32 (bf16 keeps fp32's exponent range, so no loss scaling is needed); autocast keeps the
    losses, norms and exponentials in fp32. On a CPU training stays fp32: autocast there re-casts
    every weight at every step, which small image and text models do not repay."""
    if torch.device(device).type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def precision_name(device: torch.device | str) -> str:
    """What a job's "running" event reports: "bf16" on a GPU; on a CPU "fp32" (text generation
    there switches to bf16 autocast for large batches where the CPU multiplies bf16 natively)."""
    return "bf16" if torch.device(device).type == "cuda" else "fp32"
