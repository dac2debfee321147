"""The `text.generate` task, and the generation body it shares with `text.chat`: `n` completions per job, queued jobs with the same settings in one call, text relayed as it is written to jobs that stream."""

from __future__ import annotations

import json
import logging
import secrets
import time
from dataclasses import dataclass, replace
from typing import Callable

from celery import shared_task

from core import metrics
from core.clock import parse_iso
from core.errors import InvalidInput, JobCanceled, LeaseLost
from core.schemas import DEFAULT_CHAT_MAX_NEW_TOKENS
from core.text_checks import encodable, unencodable_message
from models.text import (GenerationParams, PromptTooLong, StopCall, TextModel, generate_rows,
                         sequences_per_prompt)
from models.text_stream import TextStream
from tasks.model_loading import load_for_rows
from tasks.runner import TRANSIENT, JobContext, Outcome, run_batch
from workers.runtime import get_runtime

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reply:
    """How a generation kind reads its prompt and writes its answer (text.generate, text.chat)."""

    # (model, input) -> the text the model continues
    prompt: Callable[[TextModel, dict], str] = lambda _model, inp: inp["prompt"]
    # (model) -> stop strings the kind adds to the caller's (a chat template's end of turn)
    stops: Callable[[TextModel], tuple[str, ...]] = lambda _model: ()
    # a generated choice {index, text, finish_reason} -> the choice in the job's output
    choice: Callable[[dict], dict] = lambda c: c
    # a prompt too long for the model -> the job's error
    too_long: Callable[[PromptTooLong], InvalidInput] = (
        lambda exc: InvalidInput(str(exc), param="input.prompt", code="prompt_too_long"))
    input_param: str = "input.prompt"  # what an error about the prompt names


PLAIN = Reply()


def generate_many(ctxs: list[JobContext], reply: Reply = PLAIN) -> dict[str, Outcome]:
    """Jobs that share model and settings (core/batches.py); each keeps its own prompt and seed."""
    first = ctxs[0].job["input"]
    # One model, or adapters of one base (core/batches.py): each row runs with its job's adapter.
    model, adapter_of = load_for_rows([ctx.job["input"]["model"] for ctx in ctxs], ctxs[0].job["owner"])
    adapters = {ctx.id: key for ctx, key in zip(ctxs, adapter_of)}
    outcomes: dict[str, Outcome] = {}
    prompts = _prompts(ctxs, model, reply, outcomes)
    ctxs = [ctx for ctx in ctxs if ctx.id in prompts]
    if not ctxs:
        return outcomes
    if first["max_new_tokens"] is None:  # the caller left the length to us (text.chat)
        first = {**first, "max_new_tokens": _room(model, list(prompts.values()))}
    params = GenerationParams.from_input(first)  # each job samples from its own seed (below)
    params = replace(params, stop=params.stop + reply.stops(model))
    # No seed given: pick one and report it, so the caller can reproduce the text.
    seeds = [ctx.job["input"]["seed"] if ctx.job["input"]["seed"] is not None else secrets.randbelow(2**32)
             for ctx in ctxs]
    relay = Relay(ctxs, model, params)
    # Each prompt must fit on its own: one too long fails its job, not its batchmates.
    results = generate_rows(model, [prompts[ctx.id] for ctx in ctxs], params, seeds=seeds,
                            on_step=_progress(ctxs, outcomes), on_tokens=relay.on_tokens if relay.streams else None,
                            adapters=[adapters[ctx.id] for ctx in ctxs])
    for ctx, seed, result in zip(ctxs, seeds, results):
        if ctx.id in outcomes or result is None:
            continue  # canceled or lost during its call (the outcome says which)
        if isinstance(result, PromptTooLong):
            outcomes[ctx.id] = reply.too_long(result)
        else:
            relay.finish(ctx, result)
            outcomes[ctx.id] = _publish(ctx, result, seed, params, reply)
    return outcomes


def _room(model: TextModel, prompts: list[str]) -> int:
    """The reply length when the caller set none: what the context leaves after the longest prompt
    that fits at all, at most DEFAULT_CHAT_MAX_NEW_TOKENS and AIGC_MAX_NEW_TOKENS (a long chat keeps
    working, with shorter replies, until the conversation itself fills the context)."""
    cap = min(DEFAULT_CHAT_MAX_NEW_TOKENS, get_runtime().settings.max_new_tokens)
    lengths = [len(ids) for ids in model.tokenizer(prompts)["input_ids"]]
    longest = max((n for n in lengths if n < model.max_positions), default=model.max_positions - 1)
    return max(1, min(cap, model.max_positions - longest))


def _prompts(ctxs: list[JobContext], model: TextModel, reply: Reply, outcomes: dict[str, Outcome]) -> dict[str, str]:
    """Each job's prompt; a job whose input the model cannot take (a chat template that refuses its
    roles, say) fails alone, with the template's own words."""
    prompts = {}
    for ctx in ctxs:
        try:
            prompt = reply.prompt(model, ctx.job["input"])
        except Exception as exc:  # a model's template raises what it likes (jinja's TemplateError, ...)
            outcomes[ctx.id] = InvalidInput(f"The model cannot take this input: {exc}", param=reply.input_param)
            continue
        # The API refuses such text at the door; a job that got in some other way (queued before that
        # check, or written by hand) still fails alone rather than in the tokenizer, batch and all.
        if not encodable(prompt):
            outcomes[ctx.id] = InvalidInput(unencodable_message(reply.input_param), param=reply.input_param)
            continue
        prompts[ctx.id] = prompt
    return prompts


class Relay:
    """Streams the text of the jobs that asked for it (input.stream) to their live streams, a step
    at a time: one round trip a step for every streaming job of the batch."""

    def __init__(self, ctxs: list[JobContext], model: TextModel, params: GenerationParams):
        self.ctxs, self.store, self.params = ctxs, ctxs[0].rt.store, params
        self.per_prompt = sequences_per_prompt(params)
        self.streams = {ctx.id: [TextStream(model.tokenizer, params.stop, model.end_ids) for _ in range(params.n)]
                        for ctx in ctxs if ctx.job["input"].get("stream")}
        self.unstarted = {ctx.id: ctx.job for ctx in ctxs if ctx.id in self.streams}  # no text streamed yet

    def on_tokens(self, call: list[int], tokens: list[int]) -> None:
        deltas = {}
        for j, index in enumerate(call):
            streams = self.streams.get(self.ctxs[index].id)
            if streams is None:
                continue
            pieces = [(i, s.push(tokens[j * self.per_prompt + i % self.per_prompt])) for i, s in enumerate(streams)]
            pieces = [(i, text) for i, text in pieces if text]
            if pieces:
                deltas[self.ctxs[index].id] = pieces
        if deltas:
            self.store.publish_deltas(deltas)
            firsts = [self.unstarted.pop(job_id) for job_id in deltas if job_id in self.unstarted]
            if firsts:
                self.time_to_first_token(firsts)

    def time_to_first_token(self, jobs: list[dict]) -> None:
        """From submission to the first streamed text: what a caller waits before anything shows.
        Deferred to the batch's terminal write, so the decoding loop pays no round trip for it."""
        now = time.time()
        for job in jobs:
            wait, kind = max(0.0, now - parse_iso(job["created_at"]).timestamp()), job["kind"]
            self.ctxs[0].rt.defer_metric(
                lambda pipe, wait=wait, kind=kind: metrics.observe(pipe, "time_to_first_token_seconds", wait, kind=kind))

    def finish(self, ctx: JobContext, result: dict) -> None:
        """The rest of each choice's text (what was held back) before the job's terminal write."""
        streams = self.streams.get(ctx.id)
        if streams is None:
            return
        pieces = [(c["index"], streams[c["index"]].rest(c["text"])) for c in result["choices"]]
        pieces = [(i, text) for i, text in pieces if text]
        if pieces:
            self.store.publish_deltas({ctx.id: pieces})


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


def _publish(ctx: JobContext, result: dict, seed: int, params: GenerationParams, reply: Reply) -> Outcome:
    output = {
        "model": ctx.job["input"]["model"],
        "choices": [reply.choice(c) for c in result["choices"]],
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
