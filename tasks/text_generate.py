"""The `text.generate` task: one prompt, `n` completions per job, queued jobs with the same settings in one call."""

from __future__ import annotations

import json
import logging
import secrets

from celery import shared_task

from core.errors import InvalidInput, JobCanceled, LeaseLost
from models.text import (GenerationParams, PromptTooLong, check_prompt_fits, generate_batch, sequences_per_call,
                         sequences_per_prompt)
from tasks.model_loading import load_cached
from tasks.runner import TRANSIENT, JobContext, Outcome, run_batch
from workers.runtime import get_runtime

log = logging.getLogger(__name__)


def generate_many(ctxs: list[JobContext]) -> dict[str, Outcome]:
    """Jobs that share model and settings (core/batches.py); each keeps its own prompt and seed."""
    first = ctxs[0].job["input"]
    model = load_cached(first["model"], ctxs[0].job["owner"])
    params = GenerationParams(
        max_new_tokens=first["max_new_tokens"], temperature=first["temperature"], top_p=first["top_p"],
        top_k=first["top_k"], n=first["n"], stop=tuple(first["stop"]))
    outcomes: dict[str, Outcome] = {}
    running, longest = [], 0
    for ctx in ctxs:
        inp = ctx.job["input"]
        # Each prompt must fit on its own: one too long fails its job, not its batchmates.
        used = len(model.tokenizer(inp["prompt"])["input_ids"])
        try:
            check_prompt_fits(model, used, params.max_new_tokens)
        except PromptTooLong as exc:
            outcomes[ctx.id] = InvalidInput(str(exc), param="input.prompt", code="prompt_too_long")
            continue
        running.append(ctx)
        longest = max(longest, used)
    # No seed given: pick one and report it, so the caller can reproduce the text.
    seeds = {ctx.id: ctx.job["input"]["seed"] if ctx.job["input"]["seed"] is not None else secrets.randbelow(2**32)
             for ctx in running}

    # A batch whose KV cache would pass the budget runs as several calls.
    rows_each = sequences_per_prompt(params)
    per_call = max(1, sequences_per_call(model, longest + params.max_new_tokens, len(running) * rows_each)
                   // rows_each)
    for start in range(0, len(running), per_call):
        group = running[start:start + per_call]
        try:
            results = generate_batch(model, [ctx.job["input"]["prompt"] for ctx in group], params,
                                     on_step=_progress(group, outcomes), seeds=[seeds[ctx.id] for ctx in group])
        except JobCanceled:
            continue  # every job of this call dropped out
        for ctx, result in zip(group, results):
            if ctx.id not in outcomes:
                outcomes[ctx.id] = _publish(ctx, result, seeds[ctx.id], params)
    return outcomes


def _progress(group: list[JobContext], outcomes: dict[str, Outcome]):
    """Each step's progress for every job of a call. A canceled (or lost) job drops out of the
    results; the call stops once all of its jobs have."""
    def on_step(done: int, total: int) -> None:
        for ctx in group:
            if ctx.id in outcomes:
                continue
            try:
                ctx.progress(done, total, "tokens")
            except (JobCanceled, LeaseLost) as exc:
                outcomes[ctx.id] = exc
        if all(ctx.id in outcomes for ctx in group):
            raise JobCanceled("every job in the call was canceled")
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
