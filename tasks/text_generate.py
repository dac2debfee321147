"""The `text.generate` task: one prompt, `n` completions per job, queued jobs with the same settings in one call."""

from __future__ import annotations

import json
import logging
import secrets

from celery import shared_task

from core.errors import InvalidInput, JobCanceled, LeaseLost
from models.text import GenerationParams, PromptTooLong, StopCall, generate_rows
from tasks.model_loading import load_cached
from tasks.runner import TRANSIENT, JobContext, Outcome, run_batch
from workers.runtime import get_runtime

log = logging.getLogger(__name__)


def generate_many(ctxs: list[JobContext]) -> dict[str, Outcome]:
    """Jobs that share model and settings (core/batches.py); each keeps its own prompt and seed."""
    first = ctxs[0].job["input"]
    model = load_cached(first["model"], ctxs[0].job["owner"])
    params = GenerationParams.from_input(first)  # each job samples from its own seed (below)
    # No seed given: pick one and report it, so the caller can reproduce the text.
    seeds = [ctx.job["input"]["seed"] if ctx.job["input"]["seed"] is not None else secrets.randbelow(2**32)
             for ctx in ctxs]
    outcomes: dict[str, Outcome] = {}
    # Each prompt must fit on its own: one too long fails its job, not its batchmates.
    results = generate_rows(model, [ctx.job["input"]["prompt"] for ctx in ctxs], params, seeds=seeds,
                            on_step=_progress(ctxs, outcomes))
    for ctx, seed, result in zip(ctxs, seeds, results):
        if ctx.id in outcomes or result is None:
            continue  # canceled or lost during its call (the outcome says which)
        if isinstance(result, PromptTooLong):
            outcomes[ctx.id] = InvalidInput(str(result), param="input.prompt", code="prompt_too_long")
        else:
            outcomes[ctx.id] = _publish(ctx, result, seed, params)
    return outcomes


def _progress(ctxs: list[JobContext], outcomes: dict[str, Outcome]):
    """Each step's progress for every job of a call. A canceled (or lost) job drops out of the
    results; the call stops once all of its jobs have."""
    def on_step(call: list[int], done: int, total: int) -> None:
        group = [ctxs[i] for i in call]
        for ctx in group:
            if ctx.id in outcomes:
                continue
            try:
                ctx.progress(done, total, "tokens")
            except (JobCanceled, LeaseLost) as exc:
                outcomes[ctx.id] = exc
        if all(ctx.id in outcomes for ctx in group):
            raise StopCall("every job in the call was canceled")
    return on_step


def _publish(ctx: JobContext, result: dict, seed: int, params: GenerationParams) -> Outcome:
    output = {
        "model": ctx.job["input"]["model"],
        "choices": result["choices"],
        "usage": {"prompt_tokens": result["prompt_tokens"], "completion_tokens": result["completion_tokens"]},
        "seed": seed,
    }
    try:
        ctx.put_artifact("output.json", json.dumps(output, ensure_ascii=False, indent=2).encode(),
                         "application/json")
    except TRANSIENT:
        raise  # Redis or the store blinked: the whole batch is tried again
    except Exception as exc:  # canceled, lost, or this job's write failed: this job only
        if not isinstance(exc, (JobCanceled, LeaseLost)):
            log.exception("job %s: could not store its output", ctx.id)
        return exc
    ctx.finish_progress(params.max_new_tokens, "tokens")
    return output


@shared_task(name="text.generate", bind=True, max_retries=None)
def text_generate(self, job_id: str | None, batch_list: str | None = None) -> str:
    """Run `job_id` (a re-sent job, or the one whose submission woke a worker) and the jobs waiting
    in its batch list; with no job id, the list's next jobs (a batch left the rest for us)."""
    limit = get_runtime().settings.generate_batch_jobs
    return run_batch(self, job_id, batch_list or "", generate_many, limit)
