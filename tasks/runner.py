"""The life of one job attempt, shared by every task: lease, heartbeat, progress, cancel, finish.

A task body is `handler(ctx) -> output`; this module makes it idempotent by job id and safe
against duplicate delivery, killed workers and cancel requests.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from core.errors import AigcError, JobCanceled, LeaseLost
from core.jobs import CANCELED, CANCELING, FAILED, SUCCEEDED, archive_record
from core.storage import artifact_key, job_json_key
from workers.runtime import Runtime, get_runtime

log = logging.getLogger(__name__)

# Errors worth another try later rather than failing the job.
TRANSIENT = (RedisConnectionError, RedisTimeoutError, ConnectionError, TimeoutError)


class JobContext:
    """What a task body sees: the job, progress and artifact helpers, and the cancel flag."""

    PROGRESS_EVERY_S = 0.5  # record writes; events are sparser
    EVENT_EVERY_S = 2.0

    def __init__(self, rt: Runtime, job: dict, token: str):
        self.rt, self.job, self.token = rt, job, token
        self.id = job["id"]
        self.canceled = threading.Event()
        self.lease_lost = threading.Event()
        # A resumed attempt keeps what earlier attempts published (same names, same keys).
        self.artifacts: list[dict] = list(job.get("artifacts") or [])
        self._started = time.monotonic()
        self._first_completed: int | None = None
        self._floor = 0
        self._last_write = self._last_event = 0.0
        self.final_progress: dict | None = None  # written with the terminal status (see finish_progress)

    def check(self) -> None:
        """Raise if the job was canceled or another worker took it over."""
        if self.lease_lost.is_set():
            raise LeaseLost("lease lost: another worker owns this job")
        if self.canceled.is_set():
            raise JobCanceled("canceled by request")

    def progress(self, completed: int, total: int | None, unit: str, force: bool = False) -> None:
        """Record progress with an ETA (throttled); also the point where cancel is noticed."""
        self.check()
        now = time.monotonic()
        if not force and now - self._last_write < self.PROGRESS_EVERY_S:
            return
        if self._first_completed is None:
            self._first_completed = completed
            before = self.job.get("progress") or {}
            # A resumed job redoes steps after its checkpoint; its bar never moves backwards.
            self._floor = before.get("completed") or 0 if before.get("unit") == unit else 0
        completed = max(completed, self._floor)
        done_here = completed - self._first_completed
        eta = None
        if total and done_here > 0:
            eta = round((total - completed) * (now - self._started) / done_here, 1)
        progress = {"completed": completed, "total": total, "unit": unit, "eta_s": eta}
        event = None
        if force or now - self._last_event >= self.EVENT_EVERY_S:
            event = {"type": "progress", **progress}
            self._last_event = now
        if self.rt.store.update(self.id, self.token, event=event, progress=progress) == "fenced":
            raise LeaseLost("lease lost while writing progress")
        self._last_write = now

    def finish_progress(self, total: int, unit: str) -> None:
        """The full bar, written in the same round trip as the job's terminal status."""
        self.final_progress = {"completed": total, "total": total, "unit": unit, "eta_s": 0.0}

    def log(self, message: str) -> None:
        self.rt.store.add_event(self.id, "log", message=message)

    def put_artifact(self, name: str, data: bytes, content_type: str, publish: bool = False) -> dict:
        """Write to the job's deterministic key: a second run overwrites, never duplicates.

        publish: list it on the job now (fenced), not only when the job ends, so a page can
        show it while the job runs, e.g. the sample grid of each GAN epoch.
        """
        self.check()
        size = self.rt.storage.put_bytes(artifact_key(self.id, name), data, content_type)
        entry = {"name": name, "bytes": size, "content_type": content_type}
        self.artifacts = [a for a in self.artifacts if a["name"] != name] + [entry]
        if publish and self.rt.store.update(self.id, self.token, artifacts=self.artifacts) != "ok":
            raise LeaseLost("lease lost while publishing an artifact")
        return entry


class Heartbeat(threading.Thread):
    """Renews the leases and watches the cancel flags of the jobs a body runs (one round trip a beat)."""

    def __init__(self, ctxs: list[JobContext], ttl_s: float):
        super().__init__(name=f"heartbeat-{ctxs[0].id}", daemon=True)
        self.ctxs, self.ttl_s = ctxs, ttl_s
        self.every_s = min(1.0, ttl_s / 3)
        self.done = threading.Event()

    def run(self):
        store = self.ctxs[0].rt.store
        while not self.done.wait(self.every_s):
            live = [c for c in self.ctxs if not c.lease_lost.is_set()]
            if not live:
                return
            try:
                states = store.renew_many([(c.id, c.token) for c in live], self.ttl_s)
            except Exception:  # Redis blinked: the lease outlives a short outage, keep beating
                log.warning("job %s: heartbeat failed, retrying", live[0].id, exc_info=True)
                continue
            for ctx, (renewed, cancel) in zip(live, states):
                if not renewed:
                    ctx.lease_lost.set()
                elif cancel:
                    ctx.canceled.set()


def write_job_json(rt: Runtime, job_id: str) -> None:
    archive_record(rt.store, rt.storage, job_id)


def run_job(task, job_id: str, handler: Callable[[JobContext], dict]) -> str:
    """Run one attempt of a job; returns what happened (for logs and tests)."""
    rt = get_runtime()
    store, settings = rt.store, rt.settings
    claim = store.claim(job_id, settings.lease_ttl_s)
    if claim.outcome == "missing":
        log.warning("job %s: no record, message dropped", job_id)
        return "missing"
    if claim.outcome == "terminal":
        # A duplicate delivery of a finished job: make sure its record reached storage, then stop.
        if not rt.storage.exists(job_json_key(job_id)):
            write_job_json(rt, job_id)
        return "duplicate"
    if claim.outcome == "busy":
        # Another live worker holds the lease; look again once it would have lapsed.
        raise task.retry(countdown=settings.lease_ttl_s, max_retries=None)

    token = claim.token
    job = store.get(job_id)
    if claim.attempts > settings.max_attempts:
        error = {"code": "too_many_attempts", "param": None,
                 "message": f"the job stopped its worker {claim.attempts - 1} times; giving up"}
        return _finish(rt, job_id, token, FAILED, error=error)
    if claim.status == CANCELING or job["cancel_requested"]:
        return _finish(rt, job_id, token, CANCELED)

    ctx = JobContext(rt, job, token)
    beat = Heartbeat([ctx], settings.lease_ttl_s)
    beat.start()
    try:
        output = handler(ctx)
        ctx.check()
        return _finish(rt, job_id, token, SUCCEEDED, output=output, artifacts=ctx.artifacts)
    except JobCanceled:
        return _finish(rt, job_id, token, CANCELED, artifacts=ctx.artifacts)
    except LeaseLost:
        log.warning("job %s: lease lost, stopping without writing", job_id)
        return "lease_lost"
    except AigcError as exc:
        return _finish(rt, job_id, token, FAILED, error=exc.to_dict())
    except TRANSIENT as exc:
        log.warning("job %s: transient error %r, retrying", job_id, exc)
        try:
            store.release(job_id, token, refund_attempt=True)
        except TRANSIENT:
            pass  # Redis still down: the lease lapses on its own and the retry claims again
        raise task.retry(countdown=5, max_retries=None) from exc
    except Exception as exc:
        log.exception("job %s failed", job_id)
        error = {"code": "internal_error", "message": f"{type(exc).__name__}: {exc}"[:1000], "param": None}
        return _finish(rt, job_id, token, FAILED, error=error)
    finally:
        beat.done.set()


def _finish(rt: Runtime, job_id: str, token: str, status: str, **fields) -> str:
    """The terminal write, fenced by the lease token; then the record goes to storage."""
    outcome, previous = rt.store.transition(job_id, status, token=token, **fields)
    if outcome != "ok":
        log.warning("job %s: final write %s was %s (status was %s)", job_id, status, outcome, previous)
        return outcome
    write_job_json(rt, job_id)
    return status

