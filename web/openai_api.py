"""OpenAI-compatible generation, so existing client code works unchanged: `/v1/completions` and `/v1/chat/completions`.

Each call is a job (text.generate, text.chat) that the route waits for (web/live.py: blocking on
the job's live stream) or, with `stream: true`, relays as server-sent events framed as OpenAI and
vLLM frame them. A caller that goes away mid-stream cancels its job.
"""

from __future__ import annotations

from typing import Callable

from flask import Blueprint, jsonify, request

from core.errors import InvalidInput
from core.jobs import SUCCEEDED
from core.openai_schemas import ChatCompletionRequest, CompletionRequest
from core.shapes import parse
from web.auth import api_owner, caller_key_id
from web.deps import get_settings, get_store
from web.errors import error_response
from web.limits import StreamSlot
from web.live import wait_for_end
from web.openai_objects import NO_RETRY, chat_object, completion_object, job_error, openai_param
from web.openai_stream import ChatChunks, CompletionChunks, StreamCall, stream_response
from web.request_input import json_body
from web.service import submit_job

bp = Blueprint("openai", __name__, url_prefix="/v1")


def submit_for_openai(owner: str, kind: str, inp: dict, metadata: dict | None, tokens_field: str,
                      stream: bool = False) -> tuple[dict, bool, StreamSlot | None]:
    """Queue the job; (job, created, the stream's slot). A repeated Idempotency-Key with the same
    request finds the first job (and waits on it) instead of running a second one. A stream takes
    one of the key's stream slots before its job exists: a refused stream runs nothing."""
    slot = StreamSlot(caller_key_id()).acquire() if stream else None
    try:
        job, created = submit_job(owner, {"kind": kind, "input": inp, "metadata": metadata or {}},
                                  request.headers.get("Idempotency-Key"))
    except BaseException as exc:
        if slot:
            slot.release()
        if not isinstance(exc, InvalidInput):
            raise
        errors = [dict(e, param=openai_param(e.get("param"), tokens_field)) for e in exc.errors or []]
        raise InvalidInput(exc.message.replace(exc.param or "\0", openai_param(exc.param, tokens_field) or ""),
                           param=openai_param(exc.param, tokens_field), code=exc.code, errors=errors or None) from None
    return job, created, slot


def answer_when_done(job: dict, view: Callable[[dict], dict], tokens_field: str):
    """Wait for the job and answer as OpenAI does; 504 (with the job id) only while it is still queued."""
    job = wait_for_end(get_store(), job["id"], get_settings().sync_timeout_s)
    if job["status"] == SUCCEEDED:
        return jsonify(view(job))
    status, code, message, param = job_error(job, tokens_field)
    resp = error_response(status, code, message, param, job_id=job["id"])  # the job id to poll or look up
    resp.headers.update(NO_RETRY)
    return resp


@bp.post("/completions")
def completions():
    """A text.generate job: waited for, or streamed as `text_completion` chunks."""
    owner = api_owner()
    req = parse(CompletionRequest, json_body(), "", get_settings())
    job, created, slot = submit_for_openai(owner, "text.generate", req.job_input(), None, "max_tokens", req.stream)
    if req.stream:
        chunks = CompletionChunks(job, req.model, req.stream_options is not None and req.stream_options.include_usage)
        return stream_response(StreamCall(job, chunks, req.n or 1, "max_tokens", created), slot)
    return answer_when_done(job, completion_object, "max_tokens")


@bp.post("/chat/completions")
def chat_completions():
    """A text.chat job: waited for, or streamed as `chat.completion.chunk` events."""
    return chat_completion(api_owner(), json_body())


def chat_completion(owner: str, body):
    """The chat route's work for any caller (the API with a key, the chat page with a session)."""
    req = parse(ChatCompletionRequest, body, "", get_settings())
    tokens_field = "max_tokens" if req.max_tokens is not None and req.max_completion_tokens is None \
        else "max_completion_tokens"
    job, created, slot = submit_for_openai(owner, "text.chat", req.job_input(), req.metadata, tokens_field,
                                           req.stream)
    if req.stream:
        chunks = ChatChunks(job, req.model, req.stream_options is not None and req.stream_options.include_usage)
        return stream_response(StreamCall(job, chunks, req.n or 1, tokens_field, created), slot)
    return answer_when_done(job, chat_object, tokens_field)
