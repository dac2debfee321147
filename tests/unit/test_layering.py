"""The dependency direction in docs/ARCHITECTURE.md: models/ imports no platform package or service client."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# models/ is pure ML: Redis, S3, Celery and Flask are the callers' business (tasks/ passes data in).
FORBIDDEN_IN_MODELS = {"core", "tasks", "workers", "web", "aigc", "redis", "celery", "flask", "boto3"}


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("path", sorted((ROOT / "models").glob("*.py")), ids=lambda p: p.name)
def test_models_import_no_platform_package(path):
    assert imported_roots(path) & FORBIDDEN_IN_MODELS == set()
