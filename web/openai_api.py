"""OpenAI-compatible generation, so existing client code works unchanged: `/v1/completions` and `/v1/chat/completions`.

Each call is a job (text.generate, text.chat) that the route waits for (web/live.py: blocking on
the job's live stream) or, with `stream: true`, relays as server-sent events framed as OpenAI and
vLLM frame them. A caller that goes away mid-stream cancels its job.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable, Iterator

from flask import Blueprint, Response, jsonify, request

from core.clock import parse_iso
from core.errors import InvalidInput
from core.jobs import CANCELED, FAILED, SUCCEEDED, TERMINAL, JobStore
from core.openai_schemas import ChatCompletionRequest, CompletionRequest
from core.shapes import parse
from web.auth import api_owner
from web.deps import get_settings, get_store
from web.errors import error_response
from web.live import KEEPALIVE, SSE_HEADERS, follow, sse, wait_for_end
from web.request_input import json_body
from web.service import submit_job

bp = Blueprint("openai", __name__, url_prefix="/v1")
log = logging.getLogger(__name__)

# Failures that are the caller's input: a 400, as OpenAI answers them.
_INPUT_CODES = {"invalid_input", "prompt_too_long", "context_length_exceeded", "model_not_found"}
# Answers after a job exists must not be retried by the client: a retry would run a second job.
_NO_RETRY = {"x-should-retry": "false"}


def unix(ts: str | None) -> int | None:
    return int(parse_iso(ts).timestamp()) if ts else None


def _openai_param(param: str | None, tokens_field: str = "max_tokens") -> str | None:
    """input.max_new_tokens -> max_tokens: errors name the field the caller sent."""
    if not param:
        return param
    name = param.removeprefix("input.").removeprefix("generation.")
    if name == "max_new_tokens":
        return tokens_field
    return name


def _submit(owner: str, kind: str, inp: dict, metadata: dict | None, tokens_field: str) -> tuple[dict, bool]:
    """Queue the job; (job, created). A repeated Idempotency-Key with the same request finds the
    first job (and waits on it) instead of running a second one."""
    try:
        job, created = submit_job(owner, {"kind": kind, "input": inp, "metadata": metadata or {}},
                            request.headers.get("Idempotency-Key"))
    except InvalidInput as exc:
        errors = [dict(e, param=_openai_param(e.get("param"), tokens_field)) for e in exc.errors or []]
        raise InvalidInput(exc.message.replace(exc.param or "\0", _openai_param(exc.param, tokens_field) or ""),
                           param=_openai_param(exc.param, tokens_field), code=exc.code, errors=errors or None) from None
    return job, created


def _usage(out: dict) -> dict:
    usage = out["usage"]
    return {**usage, "total_tokens": usage["prompt_tokens"] + usage["completion_tokens"]}


def completion_object(job: dict) -> dict:
    out = job["output"]
    return {"id": f"cmpl-{job['id']}", "object": "text_completion", "created": unix(job["created_at"]),
            "model": out["model"],
            "choices": [{"text": c["text"], "index": c["index"], "logprobs": None,
                         "finish_reason": c["finish_reason"]} for c in out["choices"]],
            "usage": _usage(out)}


def chat_object(job: dict) -> dict:
    out = job["output"]
    return {"id": f"chatcmpl-{job['id']}", "object": "chat.completion", "created": unix(job["created_at"]),
            "model": out["model"],
            "choices": [{**c, "logprobs": None} for c in out["choices"]],
            "usage": _usage(out)}


def _job_error(job: dict, tokens_field: str) -> tuple[int, str, str, str | None]:
    """(HTTP status, code, message, param) for a job that did not succeed."""
    if job["status"] == FAILED:
        err = job["error"] or {}
        code, message = err.get("code", "failed"), err.get("message", "failed")
        if code == "prompt_too_long":  # OpenAI's code, and the length field under the name the caller sent
            code, message = "context_length_exceeded", message.replace("max_new_tokens", tokens_field)
        status = 400 if code in _INPUT_CODES else 500
        return status, code, message, _openai_param(err.get("param"), tokens_field)
    if job["status"] == CANCELED:
        return 409, "canceled", f"Job {job['id']} was canceled", None
    return 504, "timeout", f"The job is still {job['status']}; poll GET /v1/jobs/{job['id']}", None


def _answer(job: dict, view: Callable[[dict], dict], tokens_field: str):
    """Wait for the job and answer as OpenAI does; 504 (with the job id) only while it is still queued."""
    job = wait_for_end(get_store(), job["id"], get_settings().sync_timeout_s)
    if job["status"] == SUCCEEDED:
        return jsonify(view(job))
    status, code, message, param = _job_error(job, tokens_field)
    resp = error_response(status, code, message, param, job_id=job["id"])  # the job id to poll or look up
    resp.headers.update(_NO_RETRY)
    return resp


@bp.post("/completions")
def completions():
    """A text.generate job: waited for, or streamed as `text_completion` chunks."""
    owner = api_owner()
    req = parse(CompletionRequest, json_body(), "", get_settings())
    job, created = _submit(owner, "text.generate", req.job_input(), None, "max_tokens")
    if req.stream:
        chunks = _CompletionChunks(job, req.model, req.stream_options is not None and req.stream_options.include_usage)
        return _stream(_Call(job, chunks, req.n or 1, "max_tokens", created))
    return _answer(job, completion_object, "max_tokens")


@bp.post("/chat/completions")
def chat_completions():
    """A text.chat job: waited for, or streamed as `chat.completion.chunk` events."""
    return chat_completion(api_owner(), json_body())


def chat_completion(owner: str, body):
    """The chat route's work for any caller (the API with a key, the chat page with a session)."""
    req = parse(ChatCompletionRequest, body, "", get_settings())
    tokens_field = "max_tokens" if req.max_tokens is not None and req.max_completion_tokens is None \
        else "max_completion_tokens"
    job, created = _submit(owner, "text.chat", req.job_input(), req.metadata, tokens_field)
    if req.stream:
        chunks = _ChatChunks(job, req.model, req.stream_options is not None and req.stream_options.include_usage)
        return _stream(_Call(job, chunks, req.n or 1, tokens_field, created))
    return _answer(job, chat_object, tokens_field)


# -- streaming -----------------------------------------------------------------------------------

class _Chunks:
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
        return {**self.base, "choices": [], "usage": _usage(job["output"])}


class _CompletionChunks(_Chunks):
    def __init__(self, job: dict, model: str, include_usage: bool):
        super().__init__(job, model, "cmpl", "text_completion", include_usage)

    def text(self, index, text):
        return {**self.base, "choices": [{"text": text, "index": index, "logprobs": None, "finish_reason": None}]}

    def end(self, index, finish_reason):
        return {**self.base, "choices": [{"text": "", "index": index, "logprobs": None,
                                          "finish_reason": finish_reason}]}

    def final_text(self, choice):
        return choice["text"]


class _ChatChunks(_Chunks):
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
class _Call:
    """One streaming call: its job, how its chunks look, and whether this request created the job
    (a retry that found it by Idempotency-Key must not cancel it when it leaves)."""

    job: dict
    chunks: _Chunks
    n: int
    tokens_field: str
    created: bool


# How long a streaming call waits for the worker's first word before it starts answering: a prompt
# the model cannot take fails fast and is then a 400, as OpenAI's is; a call still waiting after
# this starts its stream, so that a caller who goes away is noticed.
_EARLY_ANSWER_S = 2.0


def _stream(call: _Call):
    store = get_store()
    updates = follow(store, call.job["id"])
    early = _early_updates(updates)
    last = next((u.job for u in reversed(early) if u.job is not None), call.job)
    if last["status"] in TERMINAL and last["status"] != SUCCEEDED:
        status, code, message, param = _job_error(last, call.tokens_field)
        resp = error_response(status, code, message, param)
        resp.headers.update(_NO_RETRY)
        return resp
    return Response(_events(store, call, early, updates), mimetype="text/event-stream",
                    headers={**SSE_HEADERS, **_NO_RETRY})


def _early_updates(updates) -> list:
    """Updates up to the first text, the job's end, or _EARLY_ANSWER_S."""
    out, deadline = [], time.monotonic() + _EARLY_ANSWER_S
    for update in updates:
        out.append(update)
        if update.deltas or (update.job and update.job["status"] in TERMINAL) or time.monotonic() > deadline:
            break
    return out


def _events(store: JobStore, call: _Call, early: list, updates) -> Iterator[str]:
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


def _ending(job: dict, chunks: _Chunks, sent: dict[int, str], tokens_field: str) -> Iterator[str]:
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
        _, code, message, param = _job_error(job, tokens_field)
        yield sse({"error": {"code": code, "message": message, "param": param, "type": code}})
    yield sse("[DONE]")


def _chain(first: list, rest) -> Iterator:
    yield from first
    yield from rest
