"""Print the project's dependencies from pyproject.toml, one per line, for the image build: all of
them (a worker), or with --web those the web server needs (no torch, no ML libraries: web/ and core/
never import them, tests/unit/test_infra.py checks it). Standard library only: it runs before any
dependency is installed."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

# What only workers import: the models/ and tasks/ packages' libraries.
WORKER_ONLY = {"torch", "torchvision", "transformers", "tokenizers", "safetensors", "scikit-learn"}


def dependencies(pyproject: Path, web: bool = False) -> list[str]:
    deps = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    if web:
        deps = [d for d in deps if re.split(r"[\[<>=!~ ;]", d, maxsplit=1)[0].lower() not in WORKER_ONLY]
    return deps


if __name__ == "__main__":
    root = Path(__file__).resolve().parents[1]
    print("\n".join(dependencies(root / "pyproject.toml", web="--web" in sys.argv[1:])))
