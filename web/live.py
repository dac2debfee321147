"""Following a job as it runs: waiting for its end, relaying its streamed text, server-sent events; every wait blocks on the job's live stream in Redis, never polls the record.

The web server runs gunicorn's gevent worker (aigc/cli.py), so a request blocked here holds a
greenlet and a Redis connection, not one of a handful of threads.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Iterator

from flask import Response, request

from core.jobs import QUEUED, TERMINAL, JobStore

BLOCK_MS = 500  # the longest a read waits before the caller looks again (a dropped client, a deadline)


@dataclass
class Update:
    """What a follower learns in one wake-up: new text per choice, attempts started, and the job
    when it changed."""

    deltas: list[tuple[int, str]] = field(default_factory=list)
    # A new attempt began after text had come (a worker lost mid-reply): the text so far belongs to
    # an attempt whose reply will not be finished, and the new one writes its own from the start.
    restarted: bool = False
    job: dict | None = None  # the record re-read after a status or progress event


def follow(store: JobStore, job_id: str, block_ms: int = BLOCK_MS) -> Iterator[Update]:
    """Updates of a job from its start, until it is terminal (the last update, and only it, carries
    the terminal record). An update with no deltas comes at least every `block_ms`, so the caller
    can check its client and its deadline. Once the record says terminal, what is left on the
    stream is read out before the end: a job's text is added before its terminal write."""
    after = "0-0"
    job = store.get(job_id)
    first, had_text, attempt = True, False, None
    while True:
        ended = job["status"] in TERMINAL
        # The first read and the reads after the end do not wait: they take what is there.
        entries = store.follow(job_id, after, None if (ended or first) else block_ms)
        fresh, first = first, False  # on the first pass the record was read just now
        update, changed = Update(), False
        for entry_id, kind, value in entries:
            after = entry_id
            if kind == "d":
                update.deltas += [(int(i), text) for i, text in json.loads(value)]
                had_text = True
                continue
            changed = True
            event = json.loads(value)
            if event.get("type") == "status" and "attempt" in event:  # a claim
                if attempt is not None and event["attempt"] != attempt and had_text:
                    update.restarted = True
                attempt = event["attempt"]
        if ended:
            if entries:  # more than one read's worth was left: keep reading
                yield update
                continue
            update.job = job
            yield update
            return
        if changed or not update.deltas:
            # An event, or a quiet interval: the record says where the job stands (a job canceled
            # while queued, or failed by the reaper, has its status event too; the quiet re-read
            # covers a stream that expired or was trimmed).
            if changed or not fresh:
                job = store.get(job_id)
            if job["status"] not in TERMINAL:
                update.job = job
        yield update


def wait_for_end(store: JobStore, job_id: str, queued_timeout_s: float) -> dict:
    """The job once terminal; or as it stands if it is still queued after `queued_timeout_s`. A job
    that has started is waited for to its end: a client that gave up now would retry and run it twice.

    Leaner than follow(), which a synchronous answer does not need: no text is relayed, so the
    record is read again only when the stream says the job ended (its status event is written in
    the same step as the record) or after a quiet interval (a stream that expired or was trimmed).
    A short job costs three reads instead of seven."""
    deadline = time.monotonic() + queued_timeout_s
    job = store.get(job_id)
    after, status = "0-0", job["status"]
    while status not in TERMINAL:
        if status == QUEUED and time.monotonic() > deadline:
            break
        entries = store.follow(job_id, after, BLOCK_MS)
        for entry_id, kind, value in entries:
            after = entry_id
            if kind == "e":
                event = json.loads(value)
                if event.get("type") == "status":
                    status = event.get("status", status)
        if status in TERMINAL or not entries:
            job = store.get(job_id)
            status = job["status"]
    return job


def sse(data) -> str:
    """One server-sent event: `data: {json}` (or a bare string such as [DONE]) and a blank line."""
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"data: {payload}\n\n"


KEEPALIVE = ": keep-alive\n\n"  # an SSE comment: clients ignore it; a write to a gone client fails
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def event_stream(store: JobStore, job_id: str, after: int) -> Iterator[str]:
    """A job's events with seq > `after` as server-sent events (`id:` is the seq, so a browser's
    EventSource resumes where it left off), live until the job ends. The event list is the record;
    the live stream only says when to read it again."""
    tail = store.live_tail(job_id)  # taken before the list is read: nothing written between is missed
    while True:
        ended = store.get(job_id)["status"] in TERMINAL
        for _page in range(10_000):
            events = store.events(job_id, after)
            for event in events:
                after = event["seq"]
                yield f"id: {after}\n" + sse(event)
            if len(events) < 500:
                break
        if ended:  # read once more after the end was seen, so the terminal event is in
            return
        entries = store.follow(job_id, tail, BLOCK_MS)
        if entries:
            tail = entries[-1][0]
        else:
            yield KEEPALIVE


def wants_event_stream() -> bool:
    return request.accept_mimetypes.best_match(["application/json", "text/event-stream"]) == "text/event-stream"


def event_stream_response(store: JobStore, job_id: str, after: int, slot=None):
    """The event stream of a job as a response; `Last-Event-ID` (a reconnecting EventSource) wins
    over `after`. `slot` (web.limits.StreamSlot) is held while the stream is open."""
    last = request.headers.get("Last-Event-ID", "")
    if last.isdigit():
        after = int(last)
    events = event_stream(store, job_id, after)
    return Response(slot.hold_while(events) if slot else events, mimetype="text/event-stream", headers=SSE_HEADERS)
