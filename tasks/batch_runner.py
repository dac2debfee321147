"""Several queued jobs run as one attempt: claimed in one step, one body, each job finished on its own.

Small jobs cost the worker more in bookkeeping than in compute: a one-token generation on the
built-in model is about a millisecond of model time against a Celery delivery, a claim, a
terminal write and a storage write. Jobs that share a batch list (core/batches.py) are taken
together by whichever worker gets the list's message, up to a limit; each keeps its own lease,
cancel flag, attempts, output and record, so a batch fails, cancels or is fenced job by job.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Callable

from core.errors import AigcError, JobCanceled, LeaseLost
from core.jobs import CANCELED, CANCELING, FAILED, SUCCEEDED, archive_job
from core.storage import job_json_key
from tasks.runner import TRANSIENT, Heartbeat, JobContext, write_job_json
from workers.runtime import get_runtime
from workers.task_messages import task_message

log = logging.getLogger(__name__)

# What a batch body returns for each job it was given: the output, or why that job did not get one
# (an AigcError says why in its own words; any other exception is an internal error of that job).
Outcome = dict | Exception
BatchHandler = Callable[[list[JobContext]], dict[str, Outcome]]


def run_batch(task, lead_id: str | None, batch_list: str, handler: BatchHandler, limit: int) -> str:
    """Claim the lead job (if any) and its batchmates, run them, finish each; returns a summary."""
    rt = get_runtime()
    store, settings = rt.store, rt.settings
    # Pushed only if this batch leaves jobs in the list: it wakes a worker for the rest.
    continuation = task_message(task.app, task.name, [None, batch_list]) if batch_list else None
    try:
        # Progress stays as submitted (0 of the job's total): no write until there is some.
        claims = store.claim_batch(lead_id, batch_list, limit, settings.lease_ttl_s, continuation)
    except TRANSIENT as exc:
        # The script ran whole or not at all; if its reply was lost, the claimed jobs' leases
        # lapse and the reaper re-sends them.
        raise task.retry(countdown=5, max_retries=None) from exc
    ctxs: list[JobContext] = []
    ended: list[tuple] = []  # (job_id, token, status, fields, final progress) for finish_many
    for claim, job in claims:
        if claim.outcome != "claimed":
            continue
        if claim.attempts > settings.max_attempts:
            error = {"code": "too_many_attempts", "param": None,
                     "message": f"the job stopped its worker {claim.attempts - 1} times; giving up"}
            ended.append((job["id"], claim.token, FAILED, {"error": error}, None))
        elif claim.status == CANCELING or job["cancel_requested"]:
            ended.append((job["id"], claim.token, CANCELED, {}, None))
        else:
            ctxs.append(JobContext(rt, job, claim.token))
    if not ctxs and not ended and lead_id and claims[0][0].outcome == "busy":
        # Another live worker holds the lead's lease; look again once it would have lapsed.
        raise task.retry(countdown=settings.lease_ttl_s, max_retries=None)
    # Jobs with nothing to run end now, before their leases could lapse during the others' run.
    counts = _finish(task, rt, ended)
    if ctxs:
        counts.update(_finish(task, rt, _run(task, ctxs, handler)))
    for claim, _ in claims:
        if claim.outcome == "missing":
            log.warning("job %s: no record, message dropped", claim.job_id)
        elif claim.outcome == "terminal":
            # Finished (a duplicate delivery) or canceled while queued: its record goes to storage.
            try:
                if not rt.storage.exists(job_json_key(claim.job_id)):
                    write_job_json(rt, claim.job_id)
            except Exception:
                log.exception("job %s: could not write job.json", claim.job_id)
    summary = ", ".join(f"{n} {what}" for what, n in sorted(counts.items()))
    return f"batch of {len(claims)}: {summary or 'nothing to run'}"


def _run(task, ctxs: list[JobContext], handler: BatchHandler) -> list[tuple]:
    """Run the body under one heartbeat; returns each job's terminal write for finish_many."""
    rt = ctxs[0].rt
    beat = Heartbeat(ctxs, rt.settings.lease_ttl_s)
    beat.start()
    try:
        outcomes = handler(ctxs)
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
        return [(ctx.id, ctx.token, FAILED, {"error": _internal_error(exc)}, None) for ctx in ctxs]
    finally:
        beat.done.set()
    ended = []
    for ctx in ctxs:
        outcome = outcomes[ctx.id]
        if isinstance(outcome, dict) and ctx.canceled.is_set():
            outcome = JobCanceled("canceled by request")
        if isinstance(outcome, LeaseLost) or ctx.lease_lost.is_set():
            log.warning("job %s: lease lost, stopping without writing", ctx.id)
        elif isinstance(outcome, JobCanceled):
            ended.append((ctx.id, ctx.token, CANCELED, {"artifacts": ctx.artifacts}, None))
        elif isinstance(outcome, AigcError):
            ended.append((ctx.id, ctx.token, FAILED, {"error": outcome.to_dict()}, None))
        elif isinstance(outcome, Exception):
            ended.append((ctx.id, ctx.token, FAILED, {"error": _internal_error(outcome)}, None))
        else:
            ended.append((ctx.id, ctx.token, SUCCEEDED, {"output": outcome, "artifacts": ctx.artifacts},
                          ctx.final_progress))
    return ended


def _internal_error(exc: Exception) -> dict:
    return {"code": "internal_error", "message": f"{type(exc).__name__}: {exc}"[:1000], "param": None}


def _finish(task, rt, ended: list[tuple]) -> Counter:
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
    for (job_id, _, status, _, _), (outcome, record) in zip(ended, results):
        if outcome != "ok":
            log.warning("job %s: final write %s was %s", job_id, status, outcome)
            counts[outcome] += 1
            continue
        counts[status] += 1
        try:
            archive_job(rt.storage, record)
        except Exception:  # the result is safe in Redis; a later delivery of the job rewrites job.json
            log.exception("job %s: could not write job.json", job_id)
    return counts
