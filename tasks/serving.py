"""The serving loop of an inference worker: text.generate and text.chat jobs of one model share the model's continuous-batching engine, joining between decoding steps and leaving the moment they finish.

A task message for a text job (or for its batch list) starts a loop in whichever worker process
takes it. The loop claims the waiting jobs of the list (one per model, both kinds: core/batches.py),
hands each to the engine (models/engine.py) as a request, and then, step by step:
- streams each step's new text to the jobs that asked for it, in one round trip for all of them
  (new jobs' first text in one more, right after their prefill, before the step's decoding pass);
- records progress and notices cancels and lost leases (the heartbeat reads the flags) and drops
  those requests from the engine before the next step;
- finishes the jobs whose requests finished: output.json, then one terminal write for all of them;
- claims more jobs from the list while the engine has room (admission is bounded by its key/value
  cache budget: a flood waits in the list, where other workers can take it too).
It ends when the list is empty and the engine idle, or, once the worker is shutting down, when
the jobs it holds are done.

Every job keeps its own lease, renewed by one heartbeat for all of them, so a worker killed mid-step
loses nothing: the leases lapse, and the reaper and the redelivered message run those jobs again,
once each (the claim is fenced by the lease and the terminal write by its token).
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass, replace

from core import logs, metrics
from core.clock import parse_iso
from core.errors import AigcError, InvalidInput, JobCanceled, LeaseLost
from models.engine import Engine, Request, RequestTooLarge, engine_for
from models.text import PromptTooLong, TextModel
from models.text_stream import TextStream
from tasks.model_loading import load_for_rows
from tasks.replies import REPLIES, Reply, job_params, job_prompt, publish_output
from tasks.runner import (TRANSIENT, Heartbeat, JobContext, Outcome, claim_jobs, finish_jobs, report_riders,
                          settle_unclaimed, terminal_writes)
from workers.runtime import get_runtime

log = logging.getLogger(__name__)

# How often the loop looks for newly queued jobs while the engine has room: often enough that a
# request joins within a step or two, rarely enough that the claim costs no step a round trip.
CLAIM_EVERY_S = 0.02


@dataclass(eq=False)
class _Job:
    """A job the loop serves: its context, request, reply and (if it streams) its text streams."""

    ctx: JobContext
    request: Request
    reply: Reply
    streams: list[TextStream] | None
    first_text_sent: bool = False


class ServingLoop:
    """One task's run of the serving loop over a model's engine (see the module's docstring)."""

    def __init__(self, task, batch_list: str, lead_id: str | None):
        self.task, self.batch_list, self.lead_id = task, batch_list, lead_id
        self.rt = get_runtime()
        self.engine: Engine | None = None
        self.model: TextModel | None = None
        self.jobs: dict[str, _Job] = {}
        self.served = 0  # jobs claimed to run (a long loop keeps counts, not the jobs it finished)
        self.deltas: dict[str, list[tuple[int, str]]] = {}
        self.beat: Heartbeat | None = None
        self.counts: dict = {}
        self.started, self.clock = time.time(), time.monotonic()
        self.last_claim = 0.0

    # -- admission ----------------------------------------------------------------------------
    def claim(self, lead_id: str | None, limit: int, continuation: bool = False) -> None:
        """Claim up to `limit` jobs and hand them to the engine. continuation: jobs left in the list
        wake another worker (the first claim only: later ones take what this engine has room for)."""
        claims, ctxs, ended = claim_jobs(self.task, lead_id, self.batch_list, limit, continuation)
        self.last_claim = time.monotonic()
        self._count(finish_jobs(self.task, self.rt, ended))
        settle_unclaimed(self.rt, claims)
        if not ctxs:
            return
        with logs.about_jobs([ctx.job for ctx in ctxs]):
            log.info("running %d job(s), attempt %s, on the serving loop", len(ctxs),
                     ",".join(str(c.job["attempts"]) for c in ctxs))
        self.served += len(ctxs)
        outcomes: dict[str, Outcome] = {}
        try:
            model, adapters = load_for_rows([ctx.job["input"]["model"] for ctx in ctxs], ctxs[0].job["owner"])
        except AigcError as exc:  # the model could not be loaded: the same for all of them
            outcomes = {ctx.id: exc for ctx in ctxs}
        else:
            self.model, self.engine = model, engine_for(model, self.rt.settings.kv_cache_bytes)
            for ctx, adapter in zip(ctxs, adapters):
                try:
                    self._admit(ctx, adapter)
                except (AigcError, PromptTooLong, RequestTooLarge) as exc:
                    outcomes[ctx.id] = self._refusal(ctx, exc)
        self._watch()
        if outcomes:
            self._end([ctx for ctx in ctxs if ctx.id in outcomes], outcomes)

    def _admit(self, ctx: JobContext, adapter: str | None) -> None:
        reply = REPLIES[ctx.job["kind"]]
        inp, model = ctx.job["input"], self.model
        prompt_ids = model.tokenizer(job_prompt(ctx, model, reply))["input_ids"]
        params = job_params(inp, model, len(prompt_ids), reply)
        # No seed given: pick one and report it, so the caller can reproduce the text.
        seed = inp["seed"] if inp["seed"] is not None else secrets.randbelow(2**32)
        params = replace(params, seed=seed)
        streams = None
        if inp.get("stream"):
            streams = [TextStream(model.tokenizer, params.stop, model.end_ids) for _ in range(params.n)]
        request = Request(prompt_ids, params, seed=seed, adapter=adapter, tag=ctx.id,
                          on_tokens=self._on_tokens if streams else None)
        self.engine.add(request)
        self.jobs[ctx.id] = _Job(ctx, request, reply, streams)

    @staticmethod
    def _refusal(ctx: JobContext, exc: Exception) -> Exception:
        reply = REPLIES[ctx.job["kind"]]
        if isinstance(exc, PromptTooLong):
            return reply.too_long(exc)
        if isinstance(exc, RequestTooLarge):
            return InvalidInput(str(exc), param="input.n", code="request_too_large")
        return exc

    def _watch(self) -> None:
        """One heartbeat for every job the loop holds (rebound, never mutated, under the beat's feet)."""
        live = [job.ctx for job in self.jobs.values()]
        if not live:
            return
        if self.beat is None or not self.beat.is_alive():  # a beat with no live lease left has ended
            self.beat = Heartbeat(live, self.rt.settings.lease_ttl_s, getattr(self.task.request, "hostname", "") or "")
            self.beat.start()
        else:
            self.beat.ctxs = live

    # -- the loop -----------------------------------------------------------------------------
    def run(self) -> str:
        self.claim(self.lead_id, self._room(), continuation=True)
        try:
            while self.jobs:
                if not self._draining() and time.monotonic() - self.last_claim >= CLAIM_EVERY_S:
                    room = self._room()
                    if room:
                        self.claim(None, room)
                if not self.jobs:
                    break
                self._check_flags()
                with self.engine.serving():
                    # New requests' first text goes out before the decoding pass, not after it.
                    finished = self.engine.step(on_prefilled=self._flush_deltas)
                self._flush_deltas()
                self._progress()
                if finished:
                    self._finish_requests(finished)
                if not self.jobs and not self._draining():
                    self.claim(None, self._room())  # one last look before the loop ends
        except TRANSIENT as exc:
            self._hand_back(exc)
        except Exception as exc:  # a bug or a broken model: every held job fails with it, none is left hanging
            log.exception("serving loop failed with %d job(s)", len(self.jobs))
            if self.engine is not None:
                self.engine.reset()
            self._end([job.ctx for job in self.jobs.values()], {job_id: exc for job_id in self.jobs})
        finally:
            if self.beat is not None:
                self.beat.done.set()
        summary = ", ".join(f"{n} {what}" for what, n in sorted(self.counts.items()))
        return f"served {self.served} job(s): {summary or 'nothing to run'}"

    def _room(self) -> int:
        """Jobs to claim now: as many as the engine has free rows (a job takes n of them), at least one
        while nothing runs."""
        if self.engine is None:
            return max(1, self.rt.settings.generate_batch_jobs)
        return self.engine.free_rows

    def _draining(self) -> bool:
        """Whether this worker is shutting down (the heartbeat saw its draining key): take no more."""
        return any(job.ctx.draining.is_set() for job in self.jobs.values())

    def _check_flags(self) -> None:
        """Canceled and lost jobs leave the engine before the next step."""
        gone = {}
        for job_id, job in self.jobs.items():
            if job.ctx.lease_lost.is_set():
                gone[job_id] = LeaseLost("lease lost: another worker owns this job")
            elif job.ctx.canceled.is_set():
                gone[job_id] = JobCanceled("canceled by request")
        self._drop(gone)

    def _progress(self) -> None:
        """Each running job's tokens so far (JobContext throttles the writes)."""
        gone = {}
        for job_id, job in self.jobs.items():
            if job.request.generated:
                try:
                    job.ctx.progress(job.request.generated, job.request.params.max_new_tokens, "tokens")
                except (JobCanceled, LeaseLost) as exc:
                    gone[job_id] = exc
        self._drop(gone)

    def _drop(self, gone: dict[str, Exception]) -> None:
        """Jobs canceled or lost: their requests leave the engine, their terminal writes go out."""
        if not gone:
            return
        for job_id in gone:
            self.engine.cancel(self.jobs[job_id].request)
        self._end([self.jobs[job_id].ctx for job_id in gone], gone)

    # -- streaming ----------------------------------------------------------------------------
    def _on_tokens(self, request: Request, tokens: list[int]) -> None:
        job = self.jobs.get(request.tag)
        if job is None:
            return
        pieces = [(i, stream.push(token)) for i, (stream, token) in enumerate(zip(job.streams, tokens))]
        pieces = [(i, text) for i, text in pieces if text]
        if pieces:
            self.deltas.setdefault(job.ctx.id, []).extend(pieces)

    def _flush_deltas(self) -> None:
        """The step's text for every streaming job, in one round trip."""
        if not self.deltas:
            return
        deltas, self.deltas = self.deltas, {}
        self.rt.store.publish_deltas(deltas)
        now = time.time()
        for job_id in deltas:
            job = self.jobs.get(job_id)
            if job is not None and not job.first_text_sent:
                job.first_text_sent = True
                self._time_to_first_token(job.ctx.job, now)

    def _time_to_first_token(self, record: dict, now: float) -> None:
        """From submission to the first streamed text: what a caller waits before anything shows.
        Deferred to a terminal write, so the decoding loop pays no round trip for it."""
        wait, kind = max(0.0, now - parse_iso(record["created_at"]).timestamp()), record["kind"]
        self.rt.defer_metric(
            lambda pipe: metrics.observe(pipe, "time_to_first_token_seconds", wait, kind=kind))

    # -- leaving --------------------------------------------------------------------------------
    def _finish_requests(self, finished: list[Request]) -> None:
        outcomes: dict[str, Outcome] = {}
        for request in finished:
            job = self.jobs.get(request.tag)
            if job is None:
                continue
            if job.streams:  # the rest of each choice's text (what was held back)
                pieces = [(c["index"], job.streams[c["index"]].rest(c["text"])) for c in request.result["choices"]]
                pieces = [(i, text) for i, text in pieces if text]
                if pieces:
                    self.rt.store.publish_deltas({job.ctx.id: pieces})
            try:
                outcomes[job.ctx.id] = publish_output(job.ctx, request.result, request.seed, request.params, job.reply)
            except TRANSIENT:
                raise
            except Exception as exc:  # noqa: BLE001 -- this job's failure, not the loop's
                log.exception("job %s: could not finish", job.ctx.id)
                outcomes[job.ctx.id] = exc
        self._end([self.jobs[job_id].ctx for job_id in outcomes], outcomes)

    def _end(self, ctxs: list[JobContext], outcomes: dict[str, Outcome]) -> None:
        """Terminal writes for these jobs in one round trip; they leave the loop and its heartbeat."""
        writes = terminal_writes(ctxs, outcomes)
        for ctx in ctxs:
            self.jobs.pop(ctx.id, None)
        self._watch()
        self._count(finish_jobs(self.task, self.rt, writes))
        report_riders(self.task, ctxs, writes, self.lead_id, self.started, time.monotonic() - self.clock)

    def _count(self, counts) -> None:
        for what, n in counts.items():
            self.counts[what] = self.counts.get(what, 0) + n

    def _hand_back(self, exc: Exception) -> None:
        """Redis or the store blinked: give every held job back (its attempt refunded) and come back
        later; a job whose lease could not be released lapses, and the reaper re-sends it."""
        log.warning("serving loop: transient error %r, handing %d job(s) back", exc, len(self.jobs))
        for job in list(self.jobs.values()):
            try:
                self.rt.store.release(job.ctx.id, job.ctx.token, refund_attempt=True)
            except TRANSIENT:
                pass
            if self.engine is not None:
                self.engine.cancel(job.request)
        self.jobs.clear()
        raise self.task.retry(countdown=5, max_retries=None) from exc


def serve(task, lead_id: str | None, batch_list: str) -> str:
    """Run the serving loop for `lead_id` (a re-sent job, or the one whose submission woke a worker)
    and the jobs of its batch list; with no job id, the list's jobs (see the module's docstring)."""
    return ServingLoop(task, batch_list, lead_id).run()

