"""The device and precision the platform's workers use on this machine, for the in-process baselines:
on a GPU machine a ratio then compares GPU with GPU, not the worker's GPU with a CPU baseline."""

from __future__ import annotations

import torch

from models.precision import training_autocast

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def to_device(batch: dict) -> dict:
    return {k: v.to(DEVICE) for k, v in batch.items()}


def gpu_autocast():
    """bf16 autocast on a GPU (as a worker runs there); nothing on a CPU, where a plain program
    runs fp32."""
    return training_autocast(DEVICE)


def synchronize() -> None:
    """Wait for queued GPU work, so a timer read after it counts that work."""
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()
