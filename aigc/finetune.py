"""`aigc files` and `aigc finetune`: upload training files; start, list, follow, pause, resume, cancel fine-tunes."""

from __future__ import annotations

import sys
import uuid
from datetime import datetime, timezone
from pathlib import Path

from aigc.client import Client, watch

JOBS = "/v1/fine_tuning/jobs"
PAGE = 100  # events fetched per request
MAX_PAGES = 1000  # a job's whole event list, fetched at most this many pages deep


def upload(client: Client, path: str, purpose: str) -> dict:
    """POST /v1/files with the file at `path`."""
    file = Path(path)
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise SystemExit(f"Cannot read {path}: {exc.strerror}") from None
    return client.upload(file.name, data, purpose)


def create_body(args) -> dict:
    """POST /v1/fine_tuning/jobs as OpenAI's client sends it; the platform's own settings
    (max_steps, lora) beside OpenAI's three, and only what was given (the rest: the defaults)."""
    hp = {name: value for name, value in (
        ("n_epochs", args.epochs), ("batch_size", args.batch_size),
        ("learning_rate_multiplier", args.learning_rate_multiplier), ("max_steps", args.max_steps),
    ) if value is not None}
    if args.full:
        hp["lora"] = False
    elif args.lora_r is not None:
        hp["lora"] = {"r": args.lora_r}
    body = {"model": args.model, "training_file": args.training_file,
            "method": {"type": "supervised", "supervised": {"hyperparameters": hp}}}
    for name in ("validation_file", "suffix", "seed"):
        if getattr(args, name) is not None:
            body[name] = getattr(args, name)
    return body


def create(client: Client, body: dict) -> dict:
    # One key per command: a retried POST (its answer lost) returns the job the first made.
    return client.request("POST", JOBS, body, headers={"Idempotency-Key": uuid.uuid4().hex})


def job_line(job: dict) -> str:
    """One line a job: id, status, base model and what it made."""
    status = "paused" if job.get("paused") else job["status"]
    return f"{job['id']}  {status:<10} {job['model']}" + (f" -> {job['fine_tuned_model']}"
                                                          if job.get("fine_tuned_model") else "")


def list_jobs(client: Client, limit: int) -> list[dict]:
    return client.request("GET", f"{JOBS}?limit={limit}")["data"]


def event_line(event: dict) -> str:
    when = datetime.fromtimestamp(event["created_at"], timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    return f"{when}  {event['level']:<5} {event['message']}"


def new_events(client: Client, job_id: str, seen: set[str]) -> list[dict]:
    """The job's events not in `seen`, oldest first. The API lists newest first: pages are read
    until one reaches an event already seen (or the list's end), at most MAX_PAGES."""
    fresh: list[dict] = []
    after = ""
    for _ in range(MAX_PAGES):
        page = client.request("GET", f"{JOBS}/{job_id}/events?limit={PAGE}" + (f"&after={after}" if after else ""))
        for event in page["data"]:
            if event["id"] in seen:
                return fresh[::-1]
            fresh.append(event)
        if not page["has_more"] or not page["data"]:
            break
        after = page["data"][-1]["id"]
    return fresh[::-1]


def follow(client: Client, job_id: str, out=sys.stdout, bar=sys.stderr, interval_s: float = 1.0,
           timeout_s: float = 24 * 3600) -> dict:
    """Print the job's events as they come and, on `bar`, a progress line, until the job ends or
    `timeout_s` passes; the job as /v1/jobs shows it. Each poll reads the job before its events, so
    the events of an ended job are all on record when they are read."""
    seen: set[str] = set()

    def fresh(_job: dict) -> list[str]:
        events = new_events(client, job_id, seen)
        seen.update(e["id"] for e in events)
        return [event_line(e) for e in events]
    return watch(client, job_id, interval_s, timeout_s, out=bar, above=fresh, above_out=out)
