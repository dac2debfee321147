"""reap_once against a real Redis: orphaned jobs re-enqueued once, live leases left alone, cleanup."""

from __future__ import annotations

import pytest

from core.clock import parse_iso
from core.jobs import CANCELED, CANCELING, RUNNING, SUCCEEDED, JobStore
from core.batches import BATCH_LISTS_KEY, batch_list_key
from workers.reaper import nudge_batches, reap_once


class Recorder:
    """Stands in for Celery's send_task: records what would be enqueued."""

    def __init__(self):
        self.sent: list[tuple[str, list]] = []

    def __call__(self, name, args=None, **kwargs):
        self.sent.append((name, args))


class Clock:
    """The reaper's clock, set by the test. The store stamps records with the real time, to the
    millisecond; ages are set from those stamps (`at(stamp, plus_s)`), so no test races the real
    clock. (A 1 ms stale_s against the real one failed whenever the call came within 1 ms.)"""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def at(self, stamp: str, plus_s: float) -> None:
        self.now = parse_iso(stamp).timestamp() + plus_s


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(redis_client) -> JobStore:
    return JobStore(redis_client)


def orphan(store: JobStore, kind: str = "text.generate") -> dict:
    """A job whose worker died: claimed, then its lease lapsed."""
    job, _ = store.create("alice", kind, {"prompt": "x"})
    assert store.claim(job["id"], 30).outcome == "claimed"
    store.r.delete(store.lease_key(job["id"]))
    return job


def test_orphaned_running_job_is_reenqueued_exactly_once(store):
    job = orphan(store)
    send = Recorder()
    assert reap_once(store, send) == [job["id"]]
    assert reap_once(store, send) == []
    assert send.sent == [("text.generate", [job["id"]])]
    assert store.get(job["id"])["status"] == RUNNING
    assert job["id"] in store.active_ids()
    logs = [e for e in store.events(job["id"]) if e["type"] == "log"]
    assert len(logs) == 1 and "re-enqueued" in logs[0]["message"]


def test_each_new_attempt_can_be_reenqueued_again(store):
    job = orphan(store)
    send = Recorder()
    reap_once(store, send)
    # The redelivered copy claims it (attempt 2) and its worker dies too.
    assert store.claim(job["id"], 30).attempts == 2
    store.r.delete(store.lease_key(job["id"]))
    assert reap_once(store, send) == [job["id"]]
    assert len(send.sent) == 2


def test_job_with_a_live_lease_is_left_alone(store):
    job, _ = store.create("alice", "text.generate", {"prompt": "x"})
    store.claim(job["id"], 30)
    send = Recorder()
    assert reap_once(store, send) == []
    assert send.sent == []
    assert store.get(job["id"])["status"] == RUNNING
    assert store.active_ids() == [job["id"]]


def test_canceling_job_with_a_lapsed_lease_becomes_canceled(store):
    job = orphan(store)
    assert store.transition(job["id"], CANCELING, cancel_requested=1)[0] == "ok"
    send = Recorder()
    assert reap_once(store, send) == []
    assert send.sent == []
    after = store.get(job["id"])
    assert after["status"] == CANCELED and after["finished_at"]
    assert store.active_ids() == []


def test_terminal_id_left_in_the_active_set_is_removed(store):
    job, _ = store.create("alice", "text.generate", {"prompt": "x"})
    store.transition(job["id"], CANCELED)
    store.r.sadd(store.ACTIVE_KEY, job["id"])
    send = Recorder()
    assert reap_once(store, send) == []
    assert store.active_ids() == [] and send.sent == []
    assert store.get(job["id"])["status"] == CANCELED


def test_missing_record_in_the_active_set_is_removed(store):
    store.r.sadd(store.ACTIVE_KEY, "job_gone")
    send = Recorder()
    assert reap_once(store, send) == []
    assert store.active_ids() == [] and send.sent == []


def test_only_orphans_are_reenqueued_among_many(store):
    orphans = {orphan(store)["id"], orphan(store, kind="gan.train")["id"]}
    live, _ = store.create("alice", "text.generate", {"prompt": "x"})
    store.claim(live["id"], 30)
    done, _ = store.create("alice", "text.generate", {"prompt": "x"})
    token = store.claim(done["id"], 30).token
    store.transition(done["id"], SUCCEEDED, token)
    send = Recorder()
    assert set(reap_once(store, send)) == orphans
    assert sorted(send.sent) == sorted((store.get(i)["kind"], [i]) for i in orphans)


def test_a_batch_list_whose_message_was_lost_gets_one_nudge_per_period(store, clock):
    inp = {"model": "builtin:tiny-gpt2", "prompt": "x", "max_new_tokens": 4}
    key = batch_list_key("alice", "text.generate", inp)
    job, _ = store.create("alice", "text.generate", inp, batch_list=key)  # its message is "lost"
    send = Recorder()
    clock.at(job["created_at"], 59)
    assert nudge_batches(store, send, stale_s=60, clock=clock) == []  # it has not waited long yet
    clock.at(job["created_at"], 60)
    assert nudge_batches(store, send, stale_s=60, clock=clock) == [key]
    # One nudge per period: the guard is a Redis key living stale_s (60 s) of real time, far longer
    # than this test.
    assert nudge_batches(store, send, stale_s=60, clock=clock) == []
    assert send.sent == [("text.generate", [None, key])]
    # Once a worker has taken the jobs, the empty list is forgotten.
    store.claim_batch(None, key, 4, 30)
    assert store.waiting_batches() == [] and not store.r.sismember(BATCH_LISTS_KEY, key)


def test_a_campaign_with_no_chunk_running_is_resumed_once_it_is_stale(store, clock):
    from core.campaigns import chunk_lease_key, chunk_part

    campaign, _ = store.create("alice", "campaign", {"chunks": 2})
    # Chunk 0 starts (the campaign turns running and active), then its worker dies: the lease lapses.
    assert store.start_part(campaign["id"], chunk_part(0), 30)[0] == "started"
    store.r.delete(chunk_lease_key(campaign["id"], 0))
    updated = store.get(campaign["id"])["updated_at"]
    send = Recorder()
    clock.at(updated, 59)
    assert reap_once(store, send, stale_s=60, clock=clock) == []  # no change for 59 s: not yet
    clock.at(updated, 60)
    assert reap_once(store, send, stale_s=60, clock=clock) == [campaign["id"]]
    assert sorted(send.sent) == [("campaign.chunk", [campaign["id"], 0]), ("campaign.chunk", [campaign["id"], 1])]
    assert reap_once(store, send, stale_s=60, clock=clock) == []  # once for this state of the campaign
    assert len(send.sent) == 2
