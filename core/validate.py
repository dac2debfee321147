"""Field checks shared by the input schemas: each returns the clean value or raises InvalidInput naming the field."""

from __future__ import annotations

from typing import Any, Callable

from core.errors import InvalidInput

MISSING = object()  # a spec default meaning "required"


def int_field(value, param, lo=None, hi=None):
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{param} must be an integer", param=param)
    if lo is not None and value < lo:
        raise InvalidInput(f"{param} must be >= {lo}", param=param)
    if hi is not None and value > hi:
        raise InvalidInput(f"{param} must be <= {hi}", param=param)
    return value


def number_field(value, param, lo=None, hi=None, lo_open=False):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise InvalidInput(f"{param} must be a number", param=param)
    if lo is not None and (value <= lo if lo_open else value < lo):
        raise InvalidInput(f"{param} must be {'>' if lo_open else '>='} {lo}", param=param)
    if hi is not None and value > hi:
        raise InvalidInput(f"{param} must be <= {hi}", param=param)
    return float(value)


def string_field(value, param, max_len, allow_empty=False):
    if not isinstance(value, str):
        raise InvalidInput(f"{param} must be a string", param=param)
    if not value and not allow_empty:
        raise InvalidInput(f"{param} must not be empty", param=param)
    if len(value) > max_len:
        raise InvalidInput(f"{param} is longer than {max_len} characters", param=param)
    return value


def fields(data: Any, param: str, spec: dict[str, tuple[Any, Callable]]) -> dict:
    """Check an object against {name: (default, check)}; unknown names are errors too."""
    if not isinstance(data, dict):
        raise InvalidInput(f"{param or 'The request body'} must be an object", param=param or None)
    unknown = sorted(set(data) - set(spec))
    if unknown:
        raise InvalidInput(f"Unknown field {unknown[0]!r}", param=f"{param}.{unknown[0]}" if param else unknown[0])
    out = {}
    for name, (default, check) in spec.items():
        sub = f"{param}.{name}" if param else name
        if name not in data or data[name] is None and default is not MISSING:
            if default is MISSING:
                raise InvalidInput(f"{sub} is required", param=sub)
            out[name] = default
        else:
            out[name] = check(data[name], sub)
    return out


def file_id(purpose: str, lookups):
    def check(value, param):
        record = lookups.file(value) if isinstance(value, str) and value else None
        if record is None:
            raise InvalidInput(f"No file {value!r}: upload it with POST /v1/files", param=param,
                               code="file_not_found")
        if record["purpose"] != purpose:
            raise InvalidInput(f"File {value!r} has purpose {record['purpose']!r}, not {purpose!r}", param=param)
        return value
    return check
