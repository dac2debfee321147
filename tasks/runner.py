"""The life of a job attempt, shared by every task: lease, heartbeat, progress, cancel, finish.

A part of a job with a lease of its own (a campaign's chunk, run_part) lives the same way: the
lease is taken with SET NX PX, renewed by the same heartbeat, fences the part's writes and is
released with a compare-and-delete.

A task body is `handler(ctx) -> output` (one job) or `handler(ctxs) -> {job id: outcome}` (a
batch); this module makes it idempotent by job id and safe against duplicate delivery, killed
workers and cancel requests. One job is a batch of one: the same claim, run and finish.

Small jobs cost the worker more in bookkeeping than in compute: a one-token generation on the
built-in model is about a millisecond of model time against a Celery delivery, a claim, a
terminal write and a storage write. Jobs that share a batch list (core/batches.py) are taken
together by whichever worker gets the list's message, up to a limit; each keeps its own lease,
cancel flag, attempts, output and record, so a batch fails, cancels or is fenced job by job.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from typing import Callable

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from core import logs, metrics, webhooks
from core.errors import AigcError, HandedOver, JobCanceled, JobPaused, LeaseLost
from core.jobs import CANCELED, CANCELING, FAILED, SUCCEEDED, TerminalWrite, archive_job, archive_record
from core.redisdb import draining_key
from core.storage import artifact_key, job_json_key
from workers import task_events
from workers.runtime import Runtime, get_runtime
from workers.task_messages import task_message

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
        # Set by the heartbeat when this worker is shutting down; a body that can checkpoint at any
        # step says so (can_hand_over) and then stops at its next check with HandedOver.
        self.draining = threading.Event()
        self.pausing = threading.Event()  # set by the heartbeat when a pause is requested
        self.can_hand_over = False
        # A resumed attempt keeps what earlier attempts published (same names, same keys).
        self.artifacts: list[dict] = list(job.get("artifacts") or [])
        self._started = time.monotonic()
        self._first_completed: int | None = None
        self._floor = 0
        self._last_write = self._last_event = 0.0
        self._last_webhook = time.monotonic()  # job.started was just sent: the first progress comes later
        self.final_progress: dict | None = None  # written with the terminal status (see finish_progress)
        self._metric_steps: dict[str, int] | None = None  # the last step of each curve on record

    def check(self) -> None:
        """Raise if the job was canceled, another worker took it over, or this worker is shutting
        down and the job can hand over (HandedOver: the body checkpoints, then lets it through)."""
        if self.lease_lost.is_set():
            raise LeaseLost("lease lost: another worker owns this job")
        if self.canceled.is_set():
            raise JobCanceled("canceled by request")
        if self.can_hand_over and self.pausing.is_set():
            raise JobPaused(f"job {self.id}: paused by request")
        if self.can_hand_over and self.draining.is_set():
            raise HandedOver(f"job {self.id}: the worker is shutting down")

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
        if self.job.get("webhook_url") and now - self._last_webhook >= self.rt.settings.webhook_progress_every_s:
            from celery import current_app

            webhooks.notify(current_app.send_task, self.job, "job.progress")
            self._last_webhook = now

    def finish_progress(self, total: int, unit: str) -> None:
        """The full bar, written in the same round trip as the job's terminal status."""
        self.final_progress = {"completed": total, "total": total, "unit": unit, "eta_s": 0.0}

    def log(self, message: str) -> None:
        self.rt.store.add_event(self.id, "log", message=message)

    def metric(self, name: str, step: int, value: float) -> None:
        """One point of a loss curve, fenced by the lease. A resumed attempt redoes the steps after
        its checkpoint with the same values (runs are deterministic), so a point the job already
        has is not added twice."""
        if self._metric_steps is None:
            self._metric_steps = {}
            for event in self.rt.store.all_events(self.id):
                if event.get("type") == "metric":
                    self._metric_steps[event["name"]] = max(event["step"], self._metric_steps.get(event["name"], -1))
        if step <= self._metric_steps.get(name, -1):
            return
        if self.rt.store.update(self.id, self.token, event={"type": "metric", "name": name, "step": step,
                                                             "value": value}) == "fenced":
            raise LeaseLost("lease lost while recording a metric")
        self._metric_steps[name] = step

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

    def __init__(self, ctxs: list[JobContext], ttl_s: float, hostname: str = ""):
        super().__init__(name=f"heartbeat-{ctxs[0].id}", daemon=True)
        self.ctxs, self.ttl_s = ctxs, ttl_s
        self.every_s = min(1.0, ttl_s / 3)
        self.done = threading.Event()
        self.drain_key = draining_key(hostname) if hostname else ""

    def run(self):
        store = self.ctxs[0].rt.store
        while not self.done.wait(self.every_s):
            live = [c for c in self.ctxs if not c.lease_lost.is_set()]
            if not live:
                return
            try:
                states = self.renew(store, live)
            except Exception:  # Redis blinked: the lease outlives a short outage, keep beating
                log.warning("job %s: heartbeat failed, retrying", live[0].id, exc_info=True)
                continue
            for ctx, (renewed, cancel, *pause) in zip(live, states):
                if not renewed:
                    ctx.lease_lost.set()
                elif cancel:
                    ctx.canceled.set()
                elif pause and pause[0]:
                    ctx.pausing.set()
            try:
                if self.drain_key and store.r.exists(self.drain_key):
                    for ctx in live:
                        ctx.draining.set()
            except Exception:  # noqa: BLE001 -- the next beat looks again
                pass

    def renew(self, store, live: list) -> list[tuple[bool, ...]]:
        """Compare-and-renew each lease and read each cancel and pause flag: (renewed, cancel, pause)
        per context."""
        return store.renew_many([(c.id, c.token) for c in live], self.ttl_s)


class PartHeartbeat(Heartbeat):
    """The same beat for part leases (PartLease): renews the part's lease, reads its job's cancel flag."""

    def renew(self, store, live: list) -> list[tuple[bool, bool]]:
        return store.renew_parts([(c.id, c.part, c.token) for c in live], self.ttl_s)


# What a batch body returns for each job it was given: the output, or why that job did not get one
# (an AigcError says why in its own words; any other exception is an internal error of that job).
Outcome = dict | Exception
BatchHandler = Callable[[list[JobContext]], dict[str, Outcome]]


def run_batch(task, lead_id: str | None, batch_list: str, handler: BatchHandler, limit: int) -> str:
    """Claim the lead job (if any) and its batchmates, run them, finish each; returns a summary."""
    rt = get_runtime()
    claims, ctxs, ended = claim_jobs(task, lead_id, batch_list, limit)
    # Jobs with nothing to run end now, before their leases could lapse during the others' run.
    counts = finish_jobs(task, rt, ended)
    if ctxs:
        started, clock = time.time(), time.monotonic()
        with logs.about_jobs([ctx.job for ctx in ctxs]):
            log.info("running %d job(s), attempt %s", len(ctxs), ",".join(str(c.job["attempts"]) for c in ctxs))
            writes = _run(task, ctxs, handler)
            counts.update(finish_jobs(task, rt, writes))
        report_riders(task, ctxs, writes, lead_id, started, time.monotonic() - clock)
    settle_unclaimed(rt, claims)
    summary = ", ".join(f"{n} {what}" for what, n in sorted(counts.items()))
    return f"batch of {len(claims)}: {summary or 'nothing to run'}"


def claim_jobs(task, lead_id: str | None, batch_list: str, limit: int, continuation: bool = True
               ) -> tuple[list, list[JobContext], list[TerminalWrite]]:
    """Claim the lead job (if any) and up to `limit` jobs in all from `batch_list`. Returns the claims,
    a context per job to run, and the terminal writes of claimed jobs with nothing to run (canceled
    while queued, too many attempts). With `continuation`, jobs left in the list wake another worker.
    A lead another worker holds raises a Celery retry for when its lease would lapse."""
    rt = get_runtime()
    store, settings = rt.store, rt.settings
    # Pushed only if this batch leaves jobs in the list: it wakes a worker for the rest.
    message = task_message(task.app, task.name, [None, batch_list]) if batch_list and continuation else None
    try:
        # Progress stays as submitted (0 of the job's total): no write until there is some.
        claims = store.claim_batch(lead_id, batch_list, limit, settings.lease_ttl_s, message,
                                   placement=rt.placement(getattr(task.request, "hostname", "") or ""))
    except TRANSIENT as exc:
        # The script ran whole or not at all; if its reply was lost, the claimed jobs' leases
        # lapse and the reaper re-sends them.
        raise task.retry(countdown=5, max_retries=None) from exc
    first_starts = [job for claim, job in claims if claim.outcome == "claimed" and claim.attempts == 1]
    for job in first_starts:
        webhooks.notify(task.app.send_task, job, "job.started")
    if first_starts:
        now = time.time()
        rt.defer_metric(lambda pipe: metrics.observe_first_starts(pipe, first_starts, now))
    ctxs: list[JobContext] = []
    ended: list[TerminalWrite] = []
    for claim, job in claims:
        if claim.outcome != "claimed":
            continue
        if claim.attempts > settings.max_attempts:
            error = {"code": "too_many_attempts", "param": None,
                     "message": f"the job stopped its worker {claim.attempts - 1} times; giving up"}
            ended.append(TerminalWrite(job["id"], claim.token, FAILED, {"error": error}))
        elif claim.status == CANCELING or job["cancel_requested"]:
            ended.append(TerminalWrite(job["id"], claim.token, CANCELED, {}))
        else:
            ctxs.append(JobContext(rt, job, claim.token))
    if not ctxs and not ended and lead_id and claims[0][0].outcome == "busy":
        # Another worker holds the lead's lease; look again once it would have lapsed.
        raise task.retry(countdown=_until_lapsed(rt, lead_id), max_retries=None)
    return claims, ctxs, ended


def report_riders(task, ctxs: list[JobContext], writes: list[TerminalWrite], lead_id: str | None,
                  started: float, ran_s: float) -> None:
    """Jobs that came with no message of their own show in Flower through an event of their own."""
    riders = {ctx.id: ctx.job for ctx in ctxs if ctx.id != lead_id}
    task_events.batchmates_ended(task, [(riders[w.job_id], w.status, started, ran_s) for w in writes
                                        if w.job_id in riders])
    _report_gpu_memory(ctxs[0].rt, getattr(task.request, "hostname", "") or "worker")


def settle_unclaimed(rt: Runtime, claims: list) -> None:
    """Claims that found nothing to run: a missing record is logged, a finished one (a duplicate
    delivery, or canceled while queued) gets its record into storage."""
    for claim, _ in claims:
        if claim.outcome == "missing":
            log.warning("job %s: no record, message dropped", claim.job_id)
        elif claim.outcome == "terminal":
            try:
                if not rt.storage.exists(job_json_key(claim.job_id)):
                    archive_record(rt.store, rt.storage, claim.job_id)
            except Exception:
                log.exception("job %s: could not write job.json", claim.job_id)


def _run(task, ctxs: list[JobContext], handler: BatchHandler) -> list[TerminalWrite]:
    """Run the body under one heartbeat; returns each job's terminal write for finish_many."""
    rt = ctxs[0].rt
    beat = Heartbeat(ctxs, rt.settings.lease_ttl_s, getattr(task.request, "hostname", "") or "")
    beat.start()
    try:
        outcomes = handler(ctxs)
    except JobPaused as paused:
        # The body checkpointed; the job waits, holding nothing, until it is resumed.
        for ctx in ctxs:
            step = (ctx.job.get("checkpoint") or {}).get("step")
            if rt.store.pause_running(ctx.id, ctx.token, step) == "ok":
                log.info("job %s paused at step %s", ctx.id, step)
            else:
                log.warning("job %s: %s, but the pause could not be written (lease lost)", ctx.id, paused)
        return []
    except HandedOver:
        # The body checkpointed; the job goes back to the queue for another worker to resume.
        for ctx in ctxs:
            rt.store.release(ctx.id, ctx.token, refund_attempt=True)
            rt.store.add_event(ctx.id, "log", message="worker shutting down: handed over, queued again")
            task.app.send_task(ctx.job["kind"], args=[ctx.id])
        return []
    except AigcError as exc:  # the model could not be loaded, every job canceled, ...: the same for all
        outcomes = {ctx.id: exc for ctx in ctxs}
    except TRANSIENT as exc:
        log.warning("batch of %s: transient error %r, retrying", ctxs[0].id, exc)
        for ctx in ctxs:
            try:
                rt.store.release(ctx.id, ctx.token, refund_attempt=True)
            except TRANSIENT:
                pass  # Redis still down: the leases lapse on their own and the reaper re-sends
        # The lead's message comes back; the others are running without a lease, which the reaper
        # re-enqueues one by one.
        raise task.retry(countdown=5, max_retries=None) from exc
    except Exception as exc:
        log.exception("batch of %s failed", ctxs[0].id)
        return [TerminalWrite(ctx.id, ctx.token, FAILED, {"error": internal_error(exc)}) for ctx in ctxs]
    finally:
        beat.done.set()
    return terminal_writes(ctxs, outcomes)


def terminal_writes(ctxs: list[JobContext], outcomes: dict[str, Outcome]) -> list[TerminalWrite]:
    """Each job's terminal write from its outcome (none for a job whose lease was lost)."""
    ended = []
    for ctx in ctxs:
        outcome = outcomes[ctx.id]
        if isinstance(outcome, dict) and ctx.canceled.is_set():
            outcome = JobCanceled("canceled by request")
        if isinstance(outcome, LeaseLost) or ctx.lease_lost.is_set():
            log.warning("job %s: lease lost, stopping without writing", ctx.id)
        elif isinstance(outcome, JobCanceled):
            ended.append(TerminalWrite(ctx.id, ctx.token, CANCELED, {"artifacts": ctx.artifacts}))
        elif isinstance(outcome, AigcError):
            ended.append(TerminalWrite(ctx.id, ctx.token, FAILED, {"error": outcome.to_dict()}))
        elif isinstance(outcome, Exception):
            ended.append(TerminalWrite(ctx.id, ctx.token, FAILED, {"error": internal_error(outcome)}))
        else:
            ended.append(TerminalWrite(ctx.id, ctx.token, SUCCEEDED, {"output": outcome, "artifacts": ctx.artifacts},
                                       ctx.final_progress))
    return ended


def _until_lapsed(rt: Runtime, job_id: str, part: str | None = None) -> float:
    """When to look again at a lease someone else holds: just after it would lapse unrenewed. A dead
    holder's message often comes back while its lease still runs (workers/orphans.py); waiting a
    whole TTL then would double the recovery time."""
    try:
        left = rt.store.lease_left_s(job_id, part)
    except TRANSIENT:
        left = rt.settings.lease_ttl_s
    return min(rt.settings.lease_ttl_s, left) + 0.5


def _report_gpu_memory(rt: Runtime, hostname: str) -> None:
    """Where there is a GPU: what this process holds now, for /metrics (lapses if the process dies)."""
    if rt.device != "cuda":
        return
    import torch

    try:
        rt.redis.set(f"{metrics.GPU_PREFIX}{hostname}:{os.getpid()}", torch.cuda.memory_allocated(), ex=300)
    except Exception:  # noqa: BLE001
        log.warning("could not record GPU memory", exc_info=True)


def _flush_metrics(rt: Runtime, *writes) -> None:
    """The metrics writes deferred since the last flush, and these, in one round trip; best effort: a
    figure lost to a Redis blink never fails a job."""
    pending, rt.pending_metrics[:] = list(rt.pending_metrics), []
    try:
        pipe = rt.redis.pipeline(transaction=False)
        for write in (*pending, *writes):
            write(pipe)
        pipe.execute()
    except Exception:  # noqa: BLE001
        log.warning("could not record metrics", exc_info=True)


def internal_error(exc: Exception) -> dict:
    return {"code": "internal_error", "message": f"{type(exc).__name__}: {exc}"[:1000], "param": None}


def finish_jobs(task, rt, ended: list[TerminalWrite]) -> Counter:
    """Terminal writes in one round trip (each fenced by its own lease), then each record to storage."""
    counts: Counter = Counter()
    if not ended:
        return counts
    try:
        results = rt.store.finish_many(ended)
    except TRANSIENT as exc:
        # Writes that landed are final; the rest keep their lapsing leases and the reaper re-sends
        # them. The message comes back for the lead, whose record then reaches storage.
        raise task.retry(countdown=5, max_retries=None) from exc
    ended_ok = [record for outcome, record in results if outcome == "ok"]
    _flush_metrics(rt, lambda pipe: metrics.observe_endings(pipe, ended_ok))
    for end, (outcome, record) in zip(ended, results):
        if outcome != "ok":
            log.warning("job %s: final write %s was %s", end.job_id, end.status, outcome)
            counts[outcome] += 1
            continue
        counts[end.status] += 1
        webhooks.notify(task.app.send_task, record, webhooks.TERMINAL_EVENTS[end.status])
        with logs.about_jobs([record]):
            log.info("job %s %s", end.job_id, end.status)
        try:
            archive_job(rt.storage, record)
        except Exception:  # the result is safe in Redis; a later delivery of the job rewrites job.json
            log.exception("job %s: could not write job.json", end.job_id)
    return counts


def run_job(task, job_id: str, handler: Callable[[JobContext], dict]) -> str:
    """Run one attempt of one job (a batch of one); returns what happened, for logs."""
    return run_batch(task, job_id, "", lambda ctxs: {ctxs[0].id: handler(ctxs[0])}, limit=1)


# -- parts of a job under their own lease (a campaign's chunks) ------------------------------------

class PartLease:
    """What a part body sees: its lease (renewed by a PartHeartbeat) and writes fenced by it."""

    def __init__(self, rt: Runtime, job_id: str, part: str, token: str):
        self.rt, self.id, self.part, self.token = rt, job_id, part, token
        self.canceled = threading.Event()  # the job's cancel flag, as the heartbeat last read it
        self.lease_lost = threading.Event()

    def check(self) -> None:
        """Raise once another worker took this part over (the heartbeat could not renew)."""
        if self.lease_lost.is_set():
            raise LeaseLost(f"lease lost: another worker owns {self.part} of {self.id}")

    def update(self, event: dict | None = None, **fields) -> str:
        """Write fields on the job, fenced by this part's lease; returns the outcome ("fenced": lost)."""
        outcome = self.rt.store.update_part(self.id, self.part, self.token, event=event, **fields)
        if outcome == "fenced":
            self.lease_lost.set()
        return outcome

    def release(self) -> None:
        """Compare-and-delete: a lease another worker holds now stays theirs."""
        try:
            self.rt.store.release_part(self.id, self.part, self.token)
        except TRANSIENT:
            pass  # Redis is down: the lease lapses on its own within one TTL


# Why a part did not run, by start_part's outcome.
_NOT_STARTED = {"terminal": "duplicate", "canceled": "skipped", "missing": "missing"}


def run_part(task, job_id: str, part: str, body: Callable[[PartLease], str]) -> str:
    """Run `body` on one part of a job under the part's lease, heartbeat and fence; returns its outcome,
    or why it did not run: duplicate (the job is finished), skipped (cancel requested), lease lost."""
    rt = get_runtime()
    ttl_s = rt.settings.lease_ttl_s
    try:
        started, token = rt.store.start_part(job_id, part, ttl_s)
    except TRANSIENT as exc:
        raise task.retry(countdown=5, max_retries=None) from exc
    if started == "busy":
        # Another worker holds the part; look again once its lease would have lapsed.
        raise task.retry(countdown=_until_lapsed(rt, job_id, part), max_retries=None)
    if started != "started":
        return _NOT_STARTED[started]
    lease = PartLease(rt, job_id, part, token)
    beat = PartHeartbeat([lease], ttl_s)
    beat.start()
    try:
        return body(lease)
    except LeaseLost:
        log.warning("job %s: lease of %s lost, stopping without writing", job_id, part)
        return "lease lost"
    except TRANSIENT as exc:
        log.warning("job %s: %s hit a transient error %r, retrying", job_id, part, exc)
        raise task.retry(countdown=5, max_retries=None) from exc
    finally:
        beat.done.set()
        lease.release()
        if rt.pending_metrics:  # a chunk's model-cache lookup, say: parts have no terminal write to ride on
            _flush_metrics(rt)
