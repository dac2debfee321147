"""Reading uploaded text: strict UTF-8 (BOM allowed), lines split on newlines only, JSONL objects."""

from __future__ import annotations

import json
from typing import Iterator

from core.errors import InvalidInput
from core.text_checks import unencodable_message, unencodable_path


def decode_text(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"The file is not UTF-8 text (bad byte at offset {exc.start})", param="file") from None


def text_lines(text: str) -> list[str]:
    """Lines split on newlines only: str.splitlines would also split on U+2028, U+0085 and
    other characters that can sit inside a JSON string."""
    return [line.rstrip("\r") for line in text.split("\n")]


def first_line(text: str) -> str | None:
    return next((line for line in text_lines(text) if line.strip()), None)


def jsonl_objects(text: str) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-blank line; a 400 names the first line that is not one."""
    for number, line in enumerate(text_lines(text), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as exc:
            raise InvalidInput(f"line {number}: not valid JSON ({exc.msg})", param="file") from None
        except RecursionError:
            raise InvalidInput(f"line {number}: nested too deeply", param="file") from None
        if not isinstance(obj, dict):
            raise InvalidInput(f"line {number}: each line must be a JSON object", param="file")
        bad = unencodable_path(obj)
        if bad is not None:
            raise InvalidInput(f"line {number}: {unencodable_message(bad)}", param="file")
        yield number, obj
