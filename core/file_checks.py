"""What an upload must look like for each purpose; a bad file gets a 400 that names the first bad line."""

from __future__ import annotations

from core.errors import InvalidInput
from core.finetune_data import parse_finetune
from core.textfiles import decode_text, jsonl_objects

FINE_TUNE = "fine-tune"


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
