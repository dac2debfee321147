"""Worker heartbeat and reaper: re-enqueue jobs whose lease lapsed, wake batches whose message was lost,
give back messages a dead worker had taken (workers/orphans.py).

Runs as a thread in each worker's main process. A redelivered message and a reaped copy may
both arrive; the lease and the terminal-status check make the second one a no-op.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time

from core import webhooks
from core.batches import batch_kind
from core.job_kinds import KINDS
from core.clock import Clock, parse_iso
from core.jobs import CANCELED, CANCELING, RUNNING, TERMINAL, JobStore, archive_record
from core.redisdb import PREFIX, WORKER_PREFIX
from workers.orphans import HeldMessages, orphaned_tags

log = logging.getLogger(__name__)


def reap_campaign(store: JobStore, send_task, job: dict, stale_s: float, clock: Clock = time.time) -> bool:
    """A running campaign with no chunk in progress and no change for `stale_s` (by `clock`):
    re-enqueue the chunks not done (a dead worker's chunk, say), or its finalizer. Duplicates are no-ops."""
    from core.campaigns import CampaignCounters, chunk_lease_key, enqueue_finalize

    cid, chunks = job["id"], job["input"]["chunks"]
    if chunks and store.r.exists(*(chunk_lease_key(cid, i) for i in range(chunks))):  # one round trip
        return False
    if clock() - parse_iso(job["updated_at"]).timestamp() < stale_s:
        return False
    counters = CampaignCounters(store.r)
    done = counters.done_chunks(cid)
    guard = f"{PREFIX}requeue:{cid}:{len(done)}:{job['updated_at']}"
    if not store.r.set(guard, "1", nx=True, ex=24 * 3600):
        return False
    if len(done) == chunks or job["cancel_requested"]:
        enqueue_finalize(send_task, cid)
    else:
        store.add_event(cid, "log", message=f"re-enqueued {chunks - len(done)} unfinished chunks")
        for index in sorted(set(range(chunks)) - done):
            send_task("campaign.chunk", args=[cid, index])
    return True


def reap_once(store: JobStore, send_task, storage=None, stale_s: float = 60,
              clock: Clock = time.time) -> list[str]:
    """One pass over active jobs; returns the ids re-enqueued. `clock` tells a campaign's age."""
    requeued = []
    for job_id in store.active_ids():
        if store.lease_alive(job_id):
            continue
        try:
            job = store.get(job_id)
        except Exception:  # the record is gone: drop it from the active set
            store.r.srem(store.ACTIVE_KEY, job_id)
            continue
        if not KINDS[job["kind"]].reaper_resends and job["status"] not in TERMINAL:
            if reap_campaign(store, send_task, job, stale_s, clock):
                requeued.append(job_id)
        elif job["status"] == CANCELING:
            outcome, _ = store.transition(job_id, CANCELED, event={"reason": "worker lost while canceling"})
            if outcome == "ok" and storage is not None:
                archive_record(store, storage, job_id)
        elif job["status"] == RUNNING:
            # One re-enqueue per attempt, however many workers reap at once.
            guard = f"{PREFIX}requeue:{job_id}:{job['attempts']}"
            if store.r.set(guard, "1", nx=True, ex=24 * 3600):
                store.add_event(job_id, "log", message="worker lost; job re-enqueued")
                send_task(job["kind"], args=[job_id])
                requeued.append(job_id)
        else:
            store.r.srem(store.ACTIVE_KEY, job_id)
    return requeued


def nudge_batches(store: JobStore, send_task, stale_s: float, clock: Clock = time.time) -> list[str]:
    """Wake a worker for batch lists whose oldest job waited `stale_s` (by `clock`): the list's message
    was lost (a worker died between taking it and claiming, say). An extra message only finds less to
    take, so at most one nudge per list each `stale_s`. Returns the lists nudged."""
    nudged = []
    for list_key, head in store.waiting_batches():
        created = store.r.hget(store.job_key(head), "created_at")
        # `clock` (seconds, like time.time) lets a test say how long a job has waited instead of
        # racing millisecond-truncated timestamps.
        if created and clock() - parse_iso(created).timestamp() < stale_s:
            continue
        if store.r.set(f"{PREFIX}nudge:{list_key}", "1", nx=True, ex=max(1, int(stale_s))):
            send_task(batch_kind(list_key), args=[None, list_key])
            nudged.append(list_key)
    return nudged


class Housekeeper(threading.Thread):
    """Announces this worker (for /readyz) and reaps orphaned jobs, until stopped."""

    def __init__(self, store: JobStore, send_task, queues: list[str], interval_s: float, storage=None,
                 stale_s: float = 60, models=lambda: [], clock: Clock = time.time, ttl_s: float = 30,
                 held: HeldMessages | None = None, restore=None):
        super().__init__(name="aigc-housekeeper", daemon=True)
        self.store, self.send_task, self.queues, self.storage = store, send_task, queues, storage
        self.stale_s, self.models, self.clock = stale_s, models, clock
        self.interval_s = interval_s
        # The announcement is this worker's lease: it lapses like a job's when the worker dies, so
        # what it held is given back within the same bound. Renewed at least three times a period.
        self.ttl_s = max(ttl_s, 3 * interval_s)
        # A message is someone's for two announcements after its delivery, then an orphan if unlisted.
        self.grace_s = 2 * interval_s + 2
        self.held, self.restore = held or HeldMessages(), restore
        self.stopped = threading.Event()
        self.key = f"{WORKER_PREFIX}{socket.gethostname()}:{os.getpid()}"

    def run(self):
        while not self.stopped.is_set():
            try:
                info = {"queues": self.queues, "pid": os.getpid(), "seen": time.time(), "models": self.models(),
                        "held": self.held.tags()}
                self.store.r.set(self.key, json.dumps(info), px=int(self.ttl_s * 1000))
                self.give_back_orphans()
                webhooks.release_due(self.store.r, self.send_task, time.time())
                reaped = reap_once(self.store, self.send_task, self.storage, self.stale_s, self.clock)
                if reaped:
                    log.warning("re-enqueued orphaned jobs: %s", reaped)
                nudged = nudge_batches(self.store, self.send_task, self.stale_s, self.clock)
                if nudged:
                    log.warning("woke workers for waiting batches: %s", nudged)
            except Exception:  # Redis restarting, say: try again next round
                log.exception("housekeeping round failed")
            self.stopped.wait(self.interval_s)

    def give_back_orphans(self) -> None:
        if self.restore is None:
            return
        orphans = orphaned_tags(self.store.r, self.clock(), self.grace_s)
        if orphans:
            log.warning("giving back %d messages no live worker holds: %s", len(orphans), orphans)
            self.restore(orphans)

    def stop(self):
        self.stopped.set()
        try:
            self.store.r.delete(self.key)
        except Exception:
            pass
