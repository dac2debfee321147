"""The `text.generate` task: one prompt, `n` completions, output on the record and in storage."""

from __future__ import annotations

import json
import secrets

from celery import shared_task

from core.errors import InvalidInput
from models.text import GenerationParams, PromptTooLong, generate_batch
from tasks.model_loading import load_cached
from tasks.runner import JobContext, run_job


def generate(ctx: JobContext) -> dict:
    inp = ctx.job["input"]
    model = load_cached(inp["model"], ctx.job["owner"])
    # No seed given: pick one and report it, so the caller can reproduce the text.
    seed = inp["seed"] if inp["seed"] is not None else secrets.randbelow(2**32)
    params = GenerationParams(
        max_new_tokens=inp["max_new_tokens"], temperature=inp["temperature"], top_p=inp["top_p"],
        top_k=inp["top_k"], n=inp["n"], seed=seed, stop=tuple(inp["stop"]))
    ctx.progress(0, params.max_new_tokens, "tokens", force=True)
    try:
        [result] = generate_batch(model, [inp["prompt"]], params,
                                  on_step=lambda done, total: ctx.progress(done, total, "tokens"))
    except PromptTooLong as exc:
        raise InvalidInput(str(exc), param="input.prompt", code="prompt_too_long") from None
    ctx.progress(params.max_new_tokens, params.max_new_tokens, "tokens", force=True)
    output = {
        "model": inp["model"],
        "choices": result["choices"],
        "usage": {"prompt_tokens": result["prompt_tokens"], "completion_tokens": result["completion_tokens"]},
        "seed": seed,
    }
    ctx.put_artifact("output.json", json.dumps(output, ensure_ascii=False, indent=2).encode(), "application/json")
    return output


@shared_task(name="text.generate", bind=True, max_retries=None)
def text_generate(self, job_id: str) -> str:
    return run_job(self, job_id, generate)
