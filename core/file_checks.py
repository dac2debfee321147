"""What an upload must look like for each purpose; a bad file gets a 400 that names the first bad line."""

from __future__ import annotations

import csv
import io
import json

from core.errors import InvalidInput

FINE_TUNE = "fine-tune"


def text_lines(text: str) -> list[str]:
    """Lines split on newlines only: str.splitlines would also split on U+2028, U+0085 and
    other characters that can sit inside a JSON string."""
    return [line.rstrip("\r") for line in text.split("\n")]


def _text(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"The file is not UTF-8 text (bad byte at offset {exc.start})", param="file") from None


def parse_finetune(data: bytes) -> list[dict]:
    """Examples from UTF-8 plain text (one per non-blank line) or JSONL of {"text"} or
    {"prompt", "completion"} objects."""
    lines = text_lines(_text(data))
    first = next((line for line in lines if line.strip()), None)
    if first is None:
        raise InvalidInput("The file has no text", param="file")
    if not first.lstrip().startswith("{"):
        return [{"text": line} for line in lines if line.strip()]
    examples = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as exc:
            raise InvalidInput(f"line {number}: not valid JSON ({exc.msg})", param="file") from None
        examples.append(_example(obj, number))
    return examples


def _example(obj, number: int) -> dict:
    if isinstance(obj, dict) and set(obj) >= {"text"} and isinstance(obj["text"], str) and obj["text"].strip():
        return {"text": obj["text"]}
    if (isinstance(obj, dict) and {"prompt", "completion"} <= set(obj)
            and all(isinstance(obj[k], str) for k in ("prompt", "completion")) and obj["completion"].strip()):
        return {"prompt": obj["prompt"], "completion": obj["completion"]}
    raise InvalidInput(f'line {number}: expected {{"text": "..."}} or {{"prompt": "...", "completion": "..."}}',
                       param="file")


def check_campaign(data: bytes) -> None:
    """A CSV with a header row of unique column names, or JSONL of objects."""
    text = _text(data)
    first = next((line for line in text_lines(text) if line.strip()), None)
    if first is None:
        raise InvalidInput("The file has no rows", param="file")
    if first.lstrip().startswith("{"):
        rows = 0
        for number, line in enumerate(text_lines(text), start=1):
            if line.strip():
                try:
                    obj = json.loads(line)
                except ValueError as exc:
                    raise InvalidInput(f"line {number}: not valid JSON ({exc.msg})", param="file") from None
                if not isinstance(obj, dict):
                    raise InvalidInput(f"line {number}: each line must be a JSON object", param="file")
                rows += 1
        return
    reader = csv.reader(io.StringIO(text))
    header = next((row for row in reader if any(cell.strip() for cell in row)), [])
    names = [cell.strip() for cell in header]
    if not names or any(not n for n in names) or len(set(names)) != len(names):
        raise InvalidInput("The first row must be a header of unique, non-empty column names "
                           f"(got {header[:8]!r})", param="file")
    if not any(any(cell.strip() for cell in row) for row in reader):
        raise InvalidInput("The file has a header but no rows", param="file")


def check_gan_dataset(data: bytes) -> None:
    from core.archive_checks import check_image_archive

    check_image_archive(data)


# Each purpose's check.
CHECKS = {FINE_TUNE: parse_finetune, "campaign": check_campaign, "gan-dataset": check_gan_dataset}


def check_upload(purpose, data: bytes) -> None:
    if purpose not in CHECKS:
        raise InvalidInput(f"purpose must be one of {sorted(CHECKS)}", param="purpose")
    CHECKS[purpose](data)
