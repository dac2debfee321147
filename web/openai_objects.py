"""OpenAI's response objects and error answers for jobs: what /v1/completions and /v1/chat/completions return, waited for or streamed."""

from __future__ import annotations

from core.clock import unix_seconds
from core.jobs import CANCELED, FAILED

# Failures that are the caller's input: a 400, as OpenAI answers them.
INPUT_CODES = {"invalid_input", "prompt_too_long", "context_length_exceeded", "model_not_found"}
# Answers after a job exists must not be retried by the client: a retry would run a second job.
NO_RETRY = {"x-should-retry": "false"}


def unix(ts: str | None) -> int | None:
    return unix_seconds(ts) if ts else None


def openai_param(param: str | None, tokens_field: str = "max_tokens") -> str | None:
    """input.max_new_tokens -> max_tokens: errors name the field the caller sent."""
    if not param:
        return param
    name = param.removeprefix("input.").removeprefix("generation.")
    if name == "max_new_tokens":
        return tokens_field
    return name


def usage(out: dict) -> dict:
    usage = out["usage"]
    return {**usage, "total_tokens": usage["prompt_tokens"] + usage["completion_tokens"]}


def completion_object(job: dict) -> dict:
    out = job["output"]
    return {"id": f"cmpl-{job['id']}", "object": "text_completion", "created": unix(job["created_at"]),
            "model": out["model"],
            "choices": [{"text": c["text"], "index": c["index"], "logprobs": None,
                         "finish_reason": c["finish_reason"]} for c in out["choices"]],
            "usage": usage(out)}


def chat_object(job: dict) -> dict:
    out = job["output"]
    return {"id": f"chatcmpl-{job['id']}", "object": "chat.completion", "created": unix(job["created_at"]),
            "model": out["model"],
            "choices": [{**c, "logprobs": None} for c in out["choices"]],
            "usage": usage(out)}


def job_error(job: dict, tokens_field: str) -> tuple[int, str, str, str | None]:
    """(HTTP status, code, message, param) for a job that did not succeed."""
    if job["status"] == FAILED:
        err = job["error"] or {}
        code, message = err.get("code", "failed"), err.get("message", "failed")
        if code == "prompt_too_long":  # OpenAI's code, and the length field under the name the caller sent
            code, message = "context_length_exceeded", message.replace("max_new_tokens", tokens_field)
        status = 400 if code in INPUT_CODES else 500
        return status, code, message, openai_param(err.get("param"), tokens_field)
    if job["status"] == CANCELED:
        return 409, "canceled", f"Job {job['id']} was canceled", None
    return 504, "timeout", f"The job is still {job['status']}; poll GET /v1/jobs/{job['id']}", None
