"""OpenAI-compatible routes, so existing client code works unchanged: completions and batches.

`POST /v1/completions` queues a text.generate job and waits for it (504 with the job id if it
takes too long); `POST /v1/batches` runs an OpenAI Batch file through the campaign engine.
"""

from __future__ import annotations

import time

from flask import Blueprint, jsonify, request

from core import schemas
from core.shapes import check
from core.clock import parse_iso
from core.errors import AigcError, InvalidInput, NotFound
from core.file_checks import BATCH_ENDPOINT, parse_batch
from core.jobs import FAILED, SUCCEEDED, TERMINAL
from web.auth import api_owner
from web.campaigns_api import KIND, cancel_campaign, create_campaign
from web.deps import get_files, get_redis, get_settings, get_store
from web.errors import error_response
from web.request_input import json_body
from web.service import submit_job

bp = Blueprint("openai", __name__, url_prefix="/v1")

# OpenAI's request fields -> the platform's text.generate input fields.
_FIELDS = {"model": "model", "prompt": "prompt", "max_tokens": "max_new_tokens", "temperature": "temperature",
           "top_p": "top_p", "n": "n", "seed": "seed", "stop": "stop"}
_IGNORED = {"user", "echo", "logprobs", "best_of", "frequency_penalty", "presence_penalty", "logit_bias",
            "suffix", "stream", "stream_options"}


def _openai_param(param: str | None) -> str | None:
    """input.max_new_tokens -> max_tokens: errors name the field the caller sent."""
    if not param:
        return param
    name = param.removeprefix("input.").removeprefix("generation.")
    return {v: k for k, v in _FIELDS.items()}.get(name, name)


def completion_to_input(body) -> dict:
    if not isinstance(body, dict):
        raise InvalidInput("The request body must be a JSON object")
    if body.get("stream"):
        raise InvalidInput("Streaming is not supported; send stream: false", param="stream")
    unknown = sorted(set(body) - set(_FIELDS) - _IGNORED)
    if unknown:
        raise InvalidInput(f"Unknown field {unknown[0]!r}", param=unknown[0])
    prompt = body.get("prompt")
    if isinstance(prompt, list):
        if len(prompt) != 1:
            raise InvalidInput("Send one prompt per request (use /v1/batches for many)", param="prompt")
        prompt = prompt[0]
    inp = {_FIELDS[k]: v for k, v in body.items() if k in _FIELDS and v is not None}
    inp["prompt"] = prompt
    inp.setdefault("max_new_tokens", 16)  # OpenAI's default for completions
    return inp


def _unix(ts: str | None) -> int | None:
    return int(parse_iso(ts).timestamp()) if ts else None


def completion_object(job: dict) -> dict:
    out = job["output"]
    usage = out["usage"]
    return {"id": f"cmpl-{job['id']}", "object": "text_completion", "created": _unix(job["created_at"]),
            "model": out["model"],
            "choices": [{"text": c["text"], "index": c["index"], "logprobs": None,
                         "finish_reason": c["finish_reason"]} for c in out["choices"]],
            "usage": {**usage, "total_tokens": usage["prompt_tokens"] + usage["completion_tokens"]}}


@bp.post("/completions")
def completions():
    """Synchronous: queue, wait, answer. 504 (with the job id to poll) past AIGC_SYNC_TIMEOUT_S."""
    owner = api_owner()
    try:
        job, _ = submit_job(owner, {"kind": "text.generate", "input": completion_to_input(json_body())})
    except InvalidInput as exc:
        raise InvalidInput(exc.message, param=_openai_param(exc.param), code=exc.code) from None
    store, deadline = get_store(), time.monotonic() + get_settings().sync_timeout_s
    while time.monotonic() < deadline:
        job = store.get(job["id"])
        if job["status"] in TERMINAL:
            break
        time.sleep(0.05)
    if job["status"] == SUCCEEDED:
        return jsonify(completion_object(job))
    if job["status"] == FAILED:
        err = job["error"] or {}
        status = 400 if err.get("code") in ("invalid_input", "prompt_too_long", "model_not_found") else 500
        return error_response(status, err.get("code", "failed"), err.get("message", "failed"),
                              _openai_param(err.get("param")))
    message = f"The job is still {job['status']}; poll GET /v1/jobs/{job['id']}"
    return jsonify({"error": {"code": "timeout", "message": message, "param": None, "job_id": job["id"]}}), 504


# -- batches ----------------------------------------------------------------------------------

_BATCH_STATUS = {"queued": "validating", "running": "in_progress", "canceling": "cancelling",
                 "succeeded": "completed", "failed": "failed", "canceled": "cancelled"}


def batch_view(job: dict) -> dict:
    from core.campaigns import CampaignCounters

    inp, out = job["input"], job["output"] or {}
    batch = inp["batch"]
    finished = _unix(job["finished_at"])
    status = _BATCH_STATUS[job["status"]]
    return {
        "id": job["id"], "object": "batch", "endpoint": batch["endpoint"], "errors": None,
        "input_file_id": batch["input_file_id"], "completion_window": batch["completion_window"],
        "status": status, "output_file_id": out.get("output_file_id"), "error_file_id": out.get("error_file_id"),
        "created_at": _unix(job["created_at"]), "in_progress_at": _unix(job["started_at"]),
        "expires_at": _unix(job["created_at"]) + 24 * 3600,
        "completed_at": finished if status == "completed" else None,
        "failed_at": finished if status == "failed" else None,
        "cancelled_at": finished if status == "cancelled" else None,
        "request_counts": {"total": inp["rows"], **CampaignCounters(get_redis()).counts(job["id"])},
        "metadata": job["metadata"] or None, "model": inp["model"],
    }


def _row_params(body: dict, line: int) -> dict:
    """One request's sampling settings, checked like a campaign's (errors name the line)."""
    gen = {_FIELDS[k]: v for k, v in body.items() if k in _FIELDS and k not in ("model", "prompt")
           and v is not None}
    gen.setdefault("max_new_tokens", 16)
    try:
        return check(schemas.BatchRequestSampling, gen, "body", get_settings())
    except InvalidInput as exc:
        raise InvalidInput(f"line {line}: {exc.message}", param="input_file_id") from None


def get_batch(batch_id: str, owner: str) -> dict:
    job = get_store().get(batch_id, owner)
    if job["kind"] != KIND or not job["input"].get("batch"):
        raise NotFound(f"No batch {batch_id!r}", param="batch_id")
    return job


@bp.post("/batches")
def create_batch():
    owner = api_owner()
    body = json_body()
    if not isinstance(body, dict):
        raise InvalidInput("The request body must be a JSON object")
    if body.get("endpoint") != BATCH_ENDPOINT:
        raise InvalidInput(f"endpoint must be {BATCH_ENDPOINT}", param="endpoint")
    file_id = body.get("input_file_id")
    try:
        record = get_files().get(file_id if isinstance(file_id, str) else "", owner)
    except NotFound:
        raise InvalidInput(f"No file {file_id!r}", param="input_file_id", code="file_not_found") from None
    if record["purpose"] != "batch":
        raise InvalidInput("The input file's purpose must be batch", param="input_file_id")
    requests = parse_batch(get_files().read(file_id, owner))
    models = {r["body"].get("model") for r in requests}
    if len(models) != 1:
        raise InvalidInput("Every request in a batch must name the same model", param="input_file_id")
    rows = [{"custom_id": r["custom_id"], "prompt": r["body"].get("prompt")} for r in requests]
    for i, row in enumerate(rows, start=1):
        if isinstance(row["prompt"], list) and len(row["prompt"]) == 1:
            row["prompt"] = row["prompt"][0]
        if not isinstance(row["prompt"], str) or not row["prompt"]:
            raise InvalidInput(f"line {i}: body.prompt must be a non-empty string", param="input_file_id")
    params = [_row_params(r["body"], i) for i, r in enumerate(requests, start=1)]
    extra = {"batch": {"endpoint": BATCH_ENDPOINT, "input_file_id": file_id,
                       "completion_window": str(body.get("completion_window", "24h"))}}
    try:
        job = create_campaign(owner, {"rows": rows, "template": "{prompt}", "model": models.pop(),
                                      "id_column": "custom_id", "metadata": body.get("metadata") or {}},
                              row_params=params, extra=extra, id_prefix="batch_")
    except AigcError as exc:
        if exc.param in ("model", "rows"):
            raise InvalidInput(exc.message, param="input_file_id", code=exc.code) from None
        raise
    return jsonify(batch_view(job))


@bp.get("/batches")
def list_batches():
    jobs, cursor = get_store().list(api_owner(), KIND, None, 100, request.args.get("after") or None)
    data = [batch_view(j) for j in jobs if j["input"].get("batch")]
    return jsonify({"object": "list", "data": data, "has_more": cursor is not None,
                    "first_id": data[0]["id"] if data else None, "last_id": data[-1]["id"] if data else None})


@bp.get("/batches/<batch_id>")
def retrieve_batch(batch_id):
    return jsonify(batch_view(get_batch(batch_id, api_owner())))


@bp.post("/batches/<batch_id>/cancel")
def cancel_batch(batch_id):
    owner = api_owner()
    get_batch(batch_id, owner)
    return jsonify(batch_view(cancel_campaign(batch_id, owner)))
