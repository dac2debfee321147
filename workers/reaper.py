"""Worker heartbeat and orphan reaper: re-enqueue running jobs whose lease lapsed (dead worker).

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

from core.jobs import CANCELED, CANCELING, RUNNING, JobStore
from core.redisdb import PREFIX, WORKER_PREFIX

log = logging.getLogger(__name__)


def reap_once(store: JobStore, send_task) -> list[str]:
    """One pass over active jobs; returns the ids re-enqueued."""
    requeued = []
    for job_id in store.active_ids():
        if store.lease_alive(job_id):
            continue
        try:
            job = store.get(job_id)
        except Exception:  # the record is gone: drop it from the active set
            store.r.srem(store.ACTIVE_KEY, job_id)
            continue
        if job["status"] == CANCELING:
            store.transition(job_id, CANCELED, event={"reason": "worker lost while canceling"})
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


class Housekeeper(threading.Thread):
    """Announces this worker (for /readyz) and reaps orphaned jobs, until stopped."""

    def __init__(self, store: JobStore, send_task, queues: list[str], interval_s: float):
        super().__init__(name="aigc-housekeeper", daemon=True)
        self.store, self.send_task, self.queues = store, send_task, queues
        self.interval_s = interval_s
        self.stopped = threading.Event()
        self.key = f"{WORKER_PREFIX}{socket.gethostname()}:{os.getpid()}"

    def run(self):
        while not self.stopped.is_set():
            try:
                info = {"queues": self.queues, "pid": os.getpid(), "seen": time.time()}
                self.store.r.set(self.key, json.dumps(info), ex=int(self.interval_s * 3) + 5)
                reaped = reap_once(self.store, self.send_task)
                if reaped:
                    log.warning("re-enqueued orphaned jobs: %s", reaped)
            except Exception:  # Redis restarting, say: try again next round
                log.exception("housekeeping round failed")
            self.stopped.wait(self.interval_s)

    def stop(self):
        self.stopped.set()
        try:
            self.store.r.delete(self.key)
        except Exception:
            pass
