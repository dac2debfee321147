"""The worker sets bounds on oneDNN's per-shape caches as it starts, and a user's own values win."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NAMES = ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "LRU_CACHE_CAPACITY")
# What `celery -A workers.celery_app` does first (oneDNN reads the bounds at its first matrix
# product, later, in a pool child): import the bootstrap; then report the bounds.
PROBE = ("import os\nimport workers.bootstrap\n"
         f"print(*(os.environ.get(n) for n in {NAMES!r}))\n")


def bounds(**env: str) -> list[str]:
    clean = {k: v for k, v in os.environ.items() if k not in NAMES}
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env={**clean, **env}, capture_output=True,
                         text=True, timeout=120, check=True)
    return out.stdout.split()


def test_the_worker_bounds_onednns_per_shape_caches():
    # 1,024 shapes each by default: the engine's steps come in every shape (bench/rss_growth.py).
    assert bounds() == ["32", "8"]


def test_a_users_own_bounds_are_kept():
    assert bounds(ONEDNN_PRIMITIVE_CACHE_CAPACITY="256", LRU_CACHE_CAPACITY="64") == ["256", "64"]
