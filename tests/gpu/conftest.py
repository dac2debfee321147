"""GPU fixtures: skip everything here where torch sees no CUDA device."""

from __future__ import annotations

import pytest
import torch


def pytest_collection_modifyitems(items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="no CUDA device: run `make gpu-check` on a machine with one")
    for item in items:
        if "tests/gpu/" in str(item.path):
            item.add_marker(skip)
