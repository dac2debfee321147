"""Corpora the project writes itself and ships (no downloads at run time)."""

from __future__ import annotations

import json
import pathlib

_AD_COPY = "ad_copy.jsonl"


def ad_copy_path() -> pathlib.Path:
    """Path of the shipped English/Chinese ad-copy corpus (JSON Lines, UTF-8)."""
    return pathlib.Path(__file__).with_name(_AD_COPY)


def load_ad_copy() -> list[str]:
    """The corpus texts, in file order."""
    with ad_copy_path().open(encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f if line.strip()]
