"""A campaign chunk's lease against a real Redis: start, heartbeat, fencing of count and progress, atomic release."""

from __future__ import annotations

import threading
import time

import pytest

import tasks.runner as runner
from core.campaigns import CampaignCounters, chunk_lease_key, chunk_part, chunk_parts
from core.jobs import CANCELING, QUEUED, RUNNING, SUCCEEDED, JobStore
from workers.runtime import Runtime

PART = chunk_part(0)


@pytest.fixture
def store(redis_client) -> JobStore:
    return JobStore(redis_client)


def campaign(store: JobStore, chunks: int = 2) -> str:
    job, _ = store.create("alice", "campaign", {"chunks": chunks, "rows": 2 * chunks}, job_id="cmp_test")
    return job["id"]


def progress(store: JobStore, cid: str) -> dict:
    return store.get(cid)["progress"]


# -- the store's part leases ---------------------------------------------------------------------

def test_start_part_takes_the_lease_and_marks_the_campaign_running_and_active(store):
    cid = campaign(store)
    outcome, token = store.start_part(cid, PART, ttl_s=30)
    assert outcome == "started" and token
    # The key the reaper and the finalizer look at (core.campaigns.chunk_lease_key).
    assert store.part_lease_key(cid, PART) == chunk_lease_key(cid, 0)
    assert store.r.get(chunk_lease_key(cid, 0)) == token
    assert 29_000 < store.r.pttl(chunk_lease_key(cid, 0)) <= 30_000
    job = store.get(cid)
    assert job["status"] == RUNNING and job["started_at"] and job["attempts"] == 0
    assert [e["status"] for e in store.events(cid)] == [QUEUED, RUNNING]
    assert cid in store.active_ids()
    assert not store.lease_alive(cid)  # the campaign's own lease stays free
    assert store.parts_alive(cid, chunk_parts(2)) and not store.parts_alive(cid, [chunk_part(1)])

    # A second chunk starts beside it; the campaign is running already (no second status event).
    assert store.start_part(cid, chunk_part(1), 30)[0] == "started"
    assert [e["status"] for e in store.events(cid)] == [QUEUED, RUNNING]


def test_start_part_refuses_a_held_part_a_cancel_a_finished_or_missing_job(store):
    cid = campaign(store)
    assert store.start_part(cid, PART, 30)[0] == "started"
    assert store.start_part(cid, PART, 30) == ("busy", "")
    store.transition(cid, CANCELING, cancel_requested=1)
    assert store.start_part(cid, chunk_part(1), 30) == ("canceled", "")
    store.transition(cid, SUCCEEDED)
    assert store.start_part(cid, chunk_part(1), 30) == ("terminal", "")
    assert store.start_part("cmp_missing", PART, 30) == ("missing", "")


def test_renew_parts_extends_the_lease_and_reads_the_cancel_flag(store):
    cid = campaign(store)
    _, token = store.start_part(cid, PART, ttl_s=2)
    assert store.renew_parts([(cid, PART, token)], ttl_s=30) == [(True, False)]
    assert store.r.pttl(chunk_lease_key(cid, 0)) > 2_000
    store.request_cancel(cid)
    assert store.renew_parts([(cid, PART, token), (cid, PART, "not-the-token")], 30) == [(True, True),
                                                                                          (False, True)]


def test_a_chunk_taken_over_cannot_write_progress_count_or_release_the_new_lease(store):
    cid = campaign(store, chunks=1)
    _, old = store.start_part(cid, PART, 30)
    store.r.delete(chunk_lease_key(cid, 0))  # the first worker stalled past its lease
    outcome, new = store.start_part(cid, PART, 30)
    assert outcome == "started" and new != old

    bar = {"completed": 2, "total": 2, "unit": "rows", "eta_s": None}
    assert store.update_part(cid, PART, old, progress=bar) == "fenced"
    assert progress(store, cid) != bar
    counters = CampaignCounters(store.r)
    assert counters.complete(cid, 0, 2, 0, 1, old) == "fenced"
    assert counters.done_chunks(cid) == set() and counters.counts(cid) == {"completed": 0, "failed": 0}
    assert store.renew_parts([(cid, PART, old)], 30) == [(False, False)]
    assert store.release_part(cid, PART, old) is False
    assert store.r.get(chunk_lease_key(cid, 0)) == new

    # The new holder writes, counts (the last chunk: it takes the finalize flag) and releases.
    assert store.update_part(cid, PART, new, progress=bar) == "ok"
    assert progress(store, cid) == bar
    assert counters.complete(cid, 0, 2, 0, 1, new) == "finalize"
    assert counters.complete(cid, 0, 2, 0, 1, new) == "duplicate"
    assert store.release_part(cid, PART, new) is True
    assert not store.parts_alive(cid, [PART])


# -- run_part: the runner's heartbeat and release for a part ---------------------------------------

class FakeTask:
    """A bound Celery task's retry: raises what it returns, as celery's does."""

    def __init__(self):
        self.retries: list[float] = []

    def retry(self, countdown, max_retries=None):
        self.retries.append(countdown)
        return RuntimeError(f"retry in {countdown}")


@pytest.fixture
def rt(make_settings, redis_client, monkeypatch) -> Runtime:
    runtime = Runtime(make_settings(AIGC_LEASE_TTL_S="2"))
    runtime.__dict__["redis"] = redis_client  # cached_property: the test's Redis
    monkeypatch.setattr(runner, "get_runtime", lambda: runtime)
    return runtime


def test_the_heartbeat_keeps_a_chunk_past_its_ttl_and_the_end_releases_it(rt):
    cid = campaign(rt.store)
    seen = {}

    def body(lease: runner.PartLease) -> str:
        time.sleep(3.5)  # past the 2 s lease: only the heartbeat keeps it
        lease.check()
        seen["token"] = rt.redis.get(chunk_lease_key(cid, 0))
        return "counted" if lease.update(progress={"completed": 1}) == "ok" else "fenced"

    assert runner.run_part(FakeTask(), cid, PART, body) == "counted"
    assert seen["token"]
    assert not rt.store.parts_alive(cid, [PART])  # released at the end


def test_a_chunk_whose_lease_is_taken_over_stops_and_leaves_the_new_lease(rt):
    cid = campaign(rt.store)
    taken = threading.Event()
    result = {}

    def body(lease: runner.PartLease) -> str:
        # Another worker takes the chunk over (this one's lease lapsed while it was stalled).
        rt.redis.delete(chunk_lease_key(cid, 0))
        result["new"] = rt.store.start_part(cid, PART, 30)[1]
        taken.set()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            lease.check()  # the heartbeat's failed renewal shows here
            time.sleep(0.05)
        return "finished"

    assert runner.run_part(FakeTask(), cid, PART, body) == "lease lost"
    assert taken.is_set() and rt.redis.get(chunk_lease_key(cid, 0)) == result["new"]


def test_run_part_retries_a_held_chunk_and_skips_a_canceled_campaign(rt, monkeypatch):
    cid = campaign(rt.store)
    rt.store.start_part(cid, PART, 30)
    task = FakeTask()
    with pytest.raises(RuntimeError, match="retry"):
        runner.run_part(task, cid, PART, lambda lease: "ran")
    assert task.retries == [2.5]  # a longer lease than ours: one of our lease periods, and a margin
    # A lease about to lapse (its holder died, say): look again just after it would. (Its time
    # left is stated, not waited for: no race with the clock.)
    monkeypatch.setattr(rt.store, "lease_left_s", lambda job_id, part=None: 0.8)
    with pytest.raises(RuntimeError, match="retry"):
        runner.run_part(task, cid, PART, lambda lease: "ran")
    assert task.retries[1] == pytest.approx(1.3)

    rt.store.request_cancel(cid)
    assert runner.run_part(task, cid, chunk_part(1), lambda lease: "ran") == "skipped"
    assert not rt.store.parts_alive(cid, [chunk_part(1)])
