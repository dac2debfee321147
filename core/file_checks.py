"""What an upload must look like for each purpose; a bad file gets a 400 that names the first bad line."""

from __future__ import annotations

from core.errors import InvalidInput
from core.textfiles import decode_text, first_line, jsonl_objects, text_lines

FINE_TUNE = "fine-tune"


def parse_finetune(data: bytes) -> list[dict]:
    """Examples from UTF-8 plain text (one per non-blank line) or JSONL of {"text"} or
    {"prompt", "completion"} objects."""
    text = decode_text(data)
    first = first_line(text)
    if first is None:
        raise InvalidInput("The file has no text", param="file")
    if not first.lstrip().startswith("{"):
        return [{"text": line} for line in text_lines(text) if line.strip()]
    return [_example(obj, number) for number, obj in jsonl_objects(text)]


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
    from core.campaigns import parse_table

    parse_table(data)


COMPLETIONS_ENDPOINT, CHAT_ENDPOINT = "/v1/completions", "/v1/chat/completions"
BATCH_ENDPOINTS = (COMPLETIONS_ENDPOINT, CHAT_ENDPOINT)


def parse_batch(data: bytes) -> list[dict]:
    """OpenAI Batch JSONL: {"custom_id", "method": "POST", "url", "body"} per line, every url one of
    BATCH_ENDPOINTS and the same on every line."""
    requests, seen = [], set()
    for number, obj in jsonl_objects(decode_text(data)):
        if not isinstance(obj.get("custom_id"), str) or not obj["custom_id"]:
            raise InvalidInput(f"line {number}: each request needs a custom_id string", param="file")
        if obj["custom_id"] in seen:
            raise InvalidInput(f"line {number}: custom_id {obj['custom_id']!r} is repeated", param="file")
        if obj.get("method", "POST") != "POST" or obj.get("url") not in BATCH_ENDPOINTS:
            raise InvalidInput(f"line {number}: only POST {' or '.join(BATCH_ENDPOINTS)} requests are supported",
                               param="file")
        if requests and obj["url"] != requests[0]["url"]:
            raise InvalidInput(f"line {number}: every request must have the url of the first, "
                               f"{requests[0]['url']}", param="file")
        if not isinstance(obj.get("body"), dict):
            raise InvalidInput(f"line {number}: body must be an object", param="file")
        seen.add(obj["custom_id"])
        requests.append(obj)
    if not requests:
        raise InvalidInput("The file has no requests", param="file")
    return requests


def check_gan_dataset(data: bytes) -> None:
    from core.archive_checks import check_image_archive

    check_image_archive(data)


# Each purpose's check.
CHECKS = {FINE_TUNE: parse_finetune, "campaign": check_campaign, "gan-dataset": check_gan_dataset,
          "batch": parse_batch}


def check_upload(purpose, data: bytes) -> None:
    if purpose not in CHECKS:
        raise InvalidInput(f"purpose must be one of {sorted(CHECKS)}", param="purpose")
    CHECKS[purpose](data)
