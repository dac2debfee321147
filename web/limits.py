"""Per-caller limits, kept in Redis so every web process shares them: API requests per key per
minute, streaming responses open at once per key, and open (queued or running) jobs per owner.
Beyond any of them the answer is a 429 with Retry-After."""

from __future__ import annotations

import time
import uuid
from typing import Iterator

from core import metrics
from core.errors import RateLimited
from core.jobs import TERMINAL, JobStore
from core.redisdb import PREFIX
from web.deps import get_redis, get_settings

STREAM_LEASE_S = 120  # a slot not refreshed for this long (its web process died) is free again
STREAM_REFRESH_S = 30


def _counted_refusal(limit: str) -> None:
    try:
        metrics.count(get_redis(), "rate_limited_total", limit=limit)
    except Exception:  # noqa: BLE001 -- the refusal stands whether or not it was counted
        pass


def check_request_rate(key_id: str) -> None:
    """Count this request against its key's minute (a fixed window: simple, and one round trip)."""
    limit = get_settings().rate_limit_per_minute
    if not limit:
        return
    now = time.time()
    window = int(now // 60)
    counter = f"{PREFIX}rate:{key_id}:{window}"
    pipe = get_redis().pipeline(transaction=False)
    pipe.incr(counter)
    pipe.expire(counter, 120)
    count, _ = pipe.execute()
    if count > limit:
        _counted_refusal("requests_per_minute")
        raise RateLimited(f"More than {limit} requests in a minute with this key; try again when the minute "
                          "is over (AIGC_RATE_LIMIT_PER_MINUTE)", retry_after_s=60 - int(now % 60))


def check_open_jobs(owner: str) -> None:
    """Refuse a new job while the owner has the limit of jobs queued or running."""
    limit = get_settings().max_open_jobs
    if not limit:
        return
    client, key = get_redis(), JobStore.open_key(owner)
    if client.scard(key) < limit:
        return
    # The set is kept by the job store's scripts; prune what a lost write or an expired record left.
    members = sorted(client.smembers(key))
    pipe = client.pipeline(transaction=False)
    for job_id in members:
        pipe.hget(JobStore.job_key(job_id), "status")
    stale = [j for j, status in zip(members, pipe.execute()) if status is None or status in TERMINAL]
    if stale:
        client.srem(key, *stale)
    if len(members) - len(stale) >= limit:
        _counted_refusal("open_jobs")
        raise RateLimited(f"You have {limit} jobs queued or running; wait for some to finish or cancel them "
                          "(AIGC_MAX_OPEN_JOBS)", retry_after_s=10)


class StreamSlot:
    """One of a key's concurrent streams, held while a streaming response is open."""

    def __init__(self, key_id: str):
        # Taken now: the stream's generator runs after the request's app context is gone.
        self.r, self.limit = get_redis(), get_settings().max_streams_per_key
        self.key = f"{PREFIX}streams:{key_id}"
        self.member = uuid.uuid4().hex
        self.held = False
        self._refreshed = 0.0

    def acquire(self) -> "StreamSlot":
        limit = self.limit
        if not limit:
            return self
        now = time.time()
        pipe = self.r.pipeline(transaction=True)
        pipe.zremrangebyscore(self.key, "-inf", now)  # slots of a web process that died
        pipe.zadd(self.key, {self.member: now + STREAM_LEASE_S})
        pipe.zcard(self.key)
        pipe.expire(self.key, STREAM_LEASE_S * 2)
        _, _, count, _ = pipe.execute()
        self.held, self._refreshed = True, now
        if count > limit:
            self.release()
            _counted_refusal("streams")
            raise RateLimited(f"This key already has {limit} streams open; close one first "
                              "(AIGC_MAX_STREAMS_PER_KEY)", retry_after_s=5)
        return self

    def refresh(self) -> None:
        now = time.time()
        if self.held and now - self._refreshed >= STREAM_REFRESH_S:
            self.r.zadd(self.key, {self.member: now + STREAM_LEASE_S}, xx=True)
            self._refreshed = now

    def release(self) -> None:
        if self.held:
            self.held = False
            self.r.zrem(self.key, self.member)

    def hold_while(self, chunks: Iterator) -> "HeldStream":
        """The stream's chunks, the slot refreshed as they go and released when it ends or the
        caller leaves (the server closes the response, even before its first chunk)."""
        return HeldStream(self, chunks)


class HeldStream:
    """An iterator over a stream's chunks that frees its slot on exhaustion or close(): unlike a
    generator's finally, close() runs even when the stream never started."""

    def __init__(self, slot: StreamSlot, chunks: Iterator):
        self.slot, self.chunks = slot, iter(chunks)

    def __iter__(self) -> "HeldStream":
        return self

    def __next__(self):
        try:
            chunk = next(self.chunks)
        except BaseException:
            self.slot.release()
            raise
        self.slot.refresh()
        return chunk

    def close(self) -> None:
        try:
            close = getattr(self.chunks, "close", None)
            if close is not None:
                close()  # the inner stream's own clean-up (a caller who left cancels its job)
        finally:
            self.slot.release()
