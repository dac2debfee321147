"""web/live.py against a real Redis: following a job's live stream to its end, and its event stream as SSE."""

from __future__ import annotations

import json

import pytest

from core.jobs import RUNNING, SUCCEEDED, JobStore
from web.live import event_stream, follow


@pytest.fixture
def store(redis_client) -> JobStore:
    return JobStore(redis_client)


def test_a_follower_reads_the_text_left_on_the_stream_after_the_end_and_sees_a_restart(store):
    """web/live.follow: text added just before the terminal write is never lost, and a new attempt
    after text came is reported (its text would not continue the old)."""
    job, _ = store.create("o", "text.chat", {"model": "m"}, job_id="job_follow")
    claim = store.claim(job["id"], ttl_s=30)
    store.publish_deltas({job["id"]: [(0, "Hel")]})
    store.release(job["id"], claim.token)
    again = store.claim(job["id"], ttl_s=30)  # a second attempt, after text went out
    store.publish_deltas({job["id"]: [(0, "Hello")]})
    outcome, _ = store.transition(job["id"], SUCCEEDED, token=again.token, output={})
    assert outcome == "ok"
    updates = list(follow(store, job["id"], block_ms=10))
    assert [d for u in updates for d in u.deltas] == [(0, "Hel"), (0, "Hello")]
    assert any(u.restarted for u in updates)
    assert updates[-1].job["status"] == SUCCEEDED and all(u.job is None or u.job["status"] == RUNNING
                                                           for u in updates[:-1])


def test_the_event_stream_gives_every_event_once_in_order_and_ends_with_the_job(store):
    job, _ = store.create("o", "text.generate", {"model": "m"}, job_id="job_events")
    claim = store.claim(job["id"], ttl_s=30)
    store.add_event(job["id"], "log", message="half way")
    store.transition(job["id"], SUCCEEDED, token=claim.token, output={})
    frames = list(event_stream(store, job["id"], -1))
    events = [json.loads(f.split("data: ", 1)[1]) for f in frames if "data: " in f]
    assert [e["seq"] for e in events] == [0, 1, 2, 3]
    assert [e.get("status") for e in events] == ["queued", "running", None, "succeeded"]
    assert frames[1].startswith("id: 1\n")
    assert [json.loads(f.split("data: ", 1)[1])["seq"] for f in event_stream(store, job["id"], 1)] == [2, 3]
