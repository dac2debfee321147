"""The README stays the front door: the two commands first, and every setting the code reads."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_setting_in_the_code_is_documented():
    code = (ROOT / "core" / "config.py").read_text()
    readme = (ROOT / "README.md").read_text()
    variables = set(re.findall(r"AIGC_[A-Z0-9_]+", code))
    assert len(variables) > 20
    missing = sorted(v for v in variables if f"`{v}`" not in readme)
    assert missing == []


def test_the_two_commands_come_first():
    readme = (ROOT / "README.md").read_text()
    first_block = readme.split("```")[1]
    assert "make run" in first_block and "make test" in first_block
    assert "make test" in (ROOT / ".ci" / "run").read_text()
