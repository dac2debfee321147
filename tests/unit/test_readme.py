"""The README stays the front door: the two commands first, and every setting the code reads."""

from __future__ import annotations

from pathlib import Path

from core.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_every_setting_in_the_code_is_documented():
    readme = (ROOT / "README.md").read_text()
    variables = {Settings.env_var(name) for name in Settings.model_fields}
    assert len(variables) > 20
    missing = sorted(v for v in variables if f"`{v}`" not in readme)
    assert missing == []


def test_the_two_commands_come_first():
    readme = (ROOT / "README.md").read_text()
    first_block = readme.split("```")[1]
    assert "make run" in first_block and "make test" in first_block
    assert "make test" in (ROOT / ".ci" / "run").read_text()
