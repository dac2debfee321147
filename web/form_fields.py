"""What a page's form shows of a request shape: each number field's bounds as the input's min and
max, and the shape's errors in words, under the labels the form uses."""

from __future__ import annotations

import re

from typing import Annotated, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from core.config import Settings

_IN_WORDS = {">=": "at least", "<=": "at most", ">": "more than", "<": "less than"}
_BOUND_RE = re.compile(r"must be (>=|<=|>|<) (-?\d+(?:\.\d+)?)")


def number_bounds(shape: type[BaseModel], settings: Settings, steps: dict[str, str]) -> dict[str, dict]:
    """{field: {"min", "max"}} from the shape's declared limits and the server's caps, for the fields
    in `steps` (name -> the input's step). An exclusive bound becomes the nearest allowed step; with
    step "any" there is none, and that side is left open (the server still refuses the bound itself)."""
    caps = {"max_new_tokens": settings.max_new_tokens, "n": settings.max_choices}
    out = {}
    for name, step in steps.items():
        lo = hi = None
        for rule in _rules(shape.model_fields[name]):
            if getattr(rule, "ge", None) is not None:
                lo = rule.ge
            if getattr(rule, "gt", None) is not None and step != "any":
                lo = rule.gt + float(step)
            if getattr(rule, "le", None) is not None:
                hi = rule.le
            if getattr(rule, "lt", None) is not None and step != "any":
                hi = rule.lt - float(step)
        if name in caps:
            hi = caps[name] if hi is None else min(hi, caps[name])
        out[name] = {"min": lo, "max": hi}
    return out


def _rules(field: FieldInfo) -> list:
    """A field's constraints, also where an optional field keeps them inside its union
    (`Seed | None`)."""
    rules = list(field.metadata)
    for arg in get_args(field.annotation):
        if get_origin(arg) is Annotated:
            for extra in get_args(arg)[1:]:
                rules += extra.metadata if isinstance(extra, FieldInfo) else [extra]
    return rules


def in_words(message: str, labels: dict[str, str]) -> str:
    """An API error message for a person filling in the form: "input.max_new_tokens must be >= 1"
    reads "Max new tokens must be at least 1"."""
    for param, label in labels.items():
        if message.startswith(param + " ") or message.startswith(param + "["):
            message = label + message[len(param):]
            break
    return _BOUND_RE.sub(lambda m: f"must be {_IN_WORDS[m.group(1)]} {_plain(m.group(2))}", message)


def _plain(number: str) -> str:
    """2.0 -> 2: a bound as a person writes it."""
    return number[:-2] if number.endswith(".0") else number
