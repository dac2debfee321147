"""Streamed OpenAI answers: a job's live updates (web/live.py) framed as OpenAI's and vLLM's server-sent events, with usage, errors, and a cancel when the caller leaves."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Iterator

from flask import Response

from core.jobs import SUCCEEDED, TERMINAL, JobStore
from web.deps import get_store
from web.errors import error_response, error_type
from web.limits import StreamSlot
from web.live import KEEPALIVE, SSE_HEADERS, follow, sse
from web.openai_objects import NO_RETRY, job_error, unix, usage

log = logging.getLogger(__name__)


class Chunks:
    """How one route frames its stream: the id, object and choice shape of each chunk."""

    def __init__(self, job: dict, model: str, prefix: str, object_name: str, include_usage: bool):
        self.base = {"id": f"{prefix}-{job['id']}", "object": object_name, "created": unix(job["created_at"]),
                     "model": model}
        if include_usage:  # OpenAI's chunks then all carry usage, null until the last
            self.base["usage"] = None
        self.include_usage = include_usage

    def opening(self, n: int) -> list[dict]:
        return []

    def text(self, index: int, text: str) -> dict:
        raise NotImplementedError

    def end(self, index: int, finish_reason: str) -> dict:
        raise NotImplementedError

    def final_text(self, choice: dict) -> str:
        """A choice's whole text as the job's output holds it."""
        raise NotImplementedError

    def usage(self, job: dict) -> dict:
        return {**self.base, "choices": [], "usage": usage(job["output"])}


class CompletionChunks(Chunks):
    def __init__(self, job: dict, model: str, include_usage: bool):
        super().__init__(job, model, "cmpl", "text_completion", include_usage)

    def text(self, index, text):
        return {**self.base, "choices": [{"text": text, "index": index, "logprobs": None, "finish_reason": None}]}

    def end(self, index, finish_reason):
        return {**self.base, "choices": [{"text": "", "index": index, "logprobs": None,
                                          "finish_reason": finish_reason}]}

    def final_text(self, choice):
        return choice["text"]


class ChatChunks(Chunks):
    def __init__(self, job: dict, model: str, include_usage: bool):
        super().__init__(job, model, "chatcmpl", "chat.completion.chunk", include_usage)

    def _choice(self, index, delta, finish_reason=None):
        return {**self.base, "choices": [{"index": index, "delta": delta, "logprobs": None,
                                          "finish_reason": finish_reason}]}

    def opening(self, n):
        # The first delta of each choice carries the role, as OpenAI's and vLLM's do.
        return [self._choice(i, {"role": "assistant", "content": ""}) for i in range(n)]

    def text(self, index, text):
        return self._choice(index, {"content": text})

    def end(self, index, finish_reason):
        return self._choice(index, {}, finish_reason)

    def final_text(self, choice):
        return choice["message"]["content"]


@dataclass
class StreamCall:
    """One streaming call: its job, how its chunks look, and whether this request created the job
    (a retry that found it by Idempotency-Key must not cancel it when it leaves)."""

    job: dict
    chunks: Chunks
    n: int
    tokens_field: str
    created: bool


# How long a streaming call waits for the worker's first word before it starts answering: a prompt
# the model cannot take fails fast and is then a 400, as OpenAI's is; a call still waiting after
# this starts its stream, so that a caller who goes away is noticed.
_EARLY_ANSWER_S = 2.0


def stream_response(call: StreamCall, slot: StreamSlot | None = None):
    """The job's answer as server-sent events; `slot` (the caller's stream slot) is held until the
    stream ends or the caller leaves."""
    store = get_store()
    try:
        updates = follow(store, call.job["id"])
        early = _early_updates(updates)
    except BaseException:
        if slot:
            slot.release()
        raise
    last = next((u.job for u in reversed(early) if u.job is not None), call.job)
    if last["status"] in TERMINAL and last["status"] != SUCCEEDED:
        if slot:
            slot.release()
        status, code, message, param = job_error(last, call.tokens_field)
        resp = error_response(status, code, message, param)
        resp.headers.update(NO_RETRY)
        return resp
    events = _events(store, call, early, updates)
    return Response(slot.hold_while(events) if slot else events, mimetype="text/event-stream",
                    headers={**SSE_HEADERS, **NO_RETRY})


def _early_updates(updates) -> list:
    """Updates up to the first text, the job's end, or _EARLY_ANSWER_S."""
    out, deadline = [], time.monotonic() + _EARLY_ANSWER_S
    for update in updates:
        out.append(update)
        if update.deltas or (update.job and update.job["status"] in TERMINAL) or time.monotonic() > deadline:
            break
    return out


def _events(store: JobStore, call: StreamCall, early: list, updates) -> Iterator[str]:
    chunks, job_id = call.chunks, call.job["id"]
    sent: dict[int, str] = {}
    ended = False
    try:
        for chunk in chunks.opening(call.n):
            yield sse(chunk)
        for update in _chain(early, updates):
            if update.restarted:
                ended = True
                message = ("The worker writing this reply stopped mid-way and the job started again; "
                           "the text sent is not its reply. Send the request again.")
                yield sse({"error": {"code": "restarted", "message": message, "param": None, "type": "server_error"}})
                yield sse("[DONE]")
                if call.created:
                    store.request_cancel(job_id)  # nobody is left to read the new attempt
                return
            for index, text in update.deltas:
                sent[index] = sent.get(index, "") + text
                yield sse(chunks.text(index, text))
            job = update.job
            if job is None or job["status"] not in TERMINAL:
                if not update.deltas:
                    yield KEEPALIVE  # a quiet interval: a write to a caller who left fails here
                continue
            ended = True
            yield from _ending(job, chunks, sent, call.tokens_field)
            return
    finally:
        if not ended and call.created:  # the caller went away: stop generating for nobody
            store.request_cancel(job_id)


def _ending(job: dict, chunks: Chunks, sent: dict[int, str], tokens_field: str) -> Iterator[str]:
    """The last chunks: whatever of each choice's final text the stream did not carry (a trimmed or
    expired stream), its finish_reason, the usage if asked for, [DONE]; or the job's error."""
    if job["status"] == SUCCEEDED:
        for choice in job["output"]["choices"]:
            index, final = choice["index"], chunks.final_text(choice)
            have = sent.get(index, "")
            if final.startswith(have) and len(final) > len(have):
                yield sse(chunks.text(index, final[len(have):]))
            elif not final.startswith(have):
                log.warning("job %s: streamed text of choice %s is not a prefix of its output", job["id"], index)
            yield sse(chunks.end(index, choice["finish_reason"]))
        if chunks.include_usage:
            yield sse(chunks.usage(job))
    else:
        status, code, message, param = job_error(job, tokens_field)
        yield sse({"error": {"code": code, "message": message, "param": param, "type": error_type(status)}})
    yield sse("[DONE]")


def _chain(first: list, rest) -> Iterator:
    yield from first
    yield from rest
