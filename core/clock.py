"""Timestamps in one format: ISO 8601, UTC, milliseconds, trailing Z."""

from datetime import datetime, timezone
from typing import Callable

# Seconds since the epoch, as time.time gives them. Code that measures how old a record's timestamp
# is takes one of these (default time.time) rather than reading the time itself, so a test can say
# what time it is instead of racing the real clock (workers/reaper.py).
Clock = Callable[[], float]


def unix_seconds(ts: str) -> int:
    """One of our timestamps as whole seconds since the epoch (OpenAI's `created` fields)."""
    return int(parse_iso(ts).timestamp())


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
