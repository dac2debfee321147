"""OpenAI-compatible batches: `POST /v1/batches` runs an OpenAI Batch file through the campaign engine."""

from __future__ import annotations

import json

from flask import Blueprint, jsonify, request

from core import schemas
from core.errors import AigcError, InvalidInput, NotFound
from core.file_checks import BATCH_ENDPOINTS, CHAT_ENDPOINT, parse_batch
from core.openai_schemas import ChatCompletionRequest, CompletionRequest
from core.shapes import check, parse
from web.auth import api_owner
from web.campaigns_api import KIND, cancel_campaign, create_campaign
from web.deps import get_files, get_redis, get_settings, get_store
from web.openai_objects import unix
from web.request_input import json_body

bp = Blueprint("openai_batches", __name__, url_prefix="/v1")

_BATCH_STATUS = {"queued": "validating", "running": "in_progress", "canceling": "cancelling",
                 "succeeded": "completed", "failed": "failed", "canceled": "cancelled"}


def batch_view(job: dict) -> dict:
    from core.campaigns import CampaignCounters

    inp, out = job["input"], job["output"] or {}
    batch = inp["batch"]
    finished = unix(job["finished_at"])
    status = _BATCH_STATUS[job["status"]]
    return {
        "id": job["id"], "object": "batch", "endpoint": batch["endpoint"], "errors": None,
        "input_file_id": batch["input_file_id"], "completion_window": batch["completion_window"],
        "status": status, "output_file_id": out.get("output_file_id"), "error_file_id": out.get("error_file_id"),
        "created_at": unix(job["created_at"]), "in_progress_at": unix(job["started_at"]),
        "expires_at": unix(job["created_at"]) + 24 * 3600,
        "completed_at": finished if status == "completed" else None,
        "failed_at": finished if status == "failed" else None,
        "cancelled_at": finished if status == "cancelled" else None,
        "request_counts": {"total": inp["rows"], **CampaignCounters(get_redis()).counts(job["id"])},
        "metadata": job["metadata"] or None, "model": inp["model"],
    }


def _request_rows(requests: list[dict], endpoint: str) -> tuple[list[dict], list[dict], str]:
    """Each line's body checked as the endpoint checks a call: (rows, each row's sampling settings,
    the model). A chat row's prompt is its messages as JSON, rendered by the worker with the
    model's chat template (tasks/campaign.py). Errors name the line."""
    settings = get_settings()
    shape = ChatCompletionRequest if endpoint == CHAT_ENDPOINT else CompletionRequest
    rows, params, models = [], [], set()
    for line, request_line in enumerate(requests, start=1):
        try:
            req = parse(shape, request_line["body"], "body", settings)
            if req.stream:
                raise InvalidInput("body.stream must be false in a batch", param="body.stream")
            inp = req.job_input()
            prompt = json.dumps(inp.pop("messages"), ensure_ascii=False) if endpoint == CHAT_ENDPOINT \
                else inp.pop("prompt")
            inp.pop("stream")
            models.add(inp.pop("model"))
            inp.pop("user", None)
            params.append(check(schemas.BatchRequestSampling, inp, "body", settings))
        except InvalidInput as exc:  # named as the line wrote it: max_tokens, not max_new_tokens
            message = exc.message.replace("max_new_tokens", "max_tokens")
            raise InvalidInput(f"line {line}: {message}", param="input_file_id", code=exc.code) from None
        rows.append({"custom_id": request_line["custom_id"], "prompt": prompt})
    if len(models) != 1:
        raise InvalidInput("Every request in a batch must name the same model", param="input_file_id")
    return rows, params, models.pop()


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
    endpoint = body.get("endpoint")
    if endpoint not in BATCH_ENDPOINTS:
        raise InvalidInput(f"endpoint must be one of {', '.join(BATCH_ENDPOINTS)}", param="endpoint")
    file_id = body.get("input_file_id")
    try:
        record = get_files().get(file_id if isinstance(file_id, str) else "", owner)
    except NotFound:
        raise InvalidInput(f"No file {file_id!r}", param="input_file_id", code="file_not_found") from None
    if record["purpose"] != "batch":
        raise InvalidInput("The input file's purpose must be batch", param="input_file_id")
    requests = parse_batch(get_files().read(file_id, owner))
    if requests[0]["url"] != endpoint:
        raise InvalidInput(f"The file's requests are for {requests[0]['url']}, not {endpoint}", param="endpoint")
    rows, params, model = _request_rows(requests, endpoint)
    extra = {"batch": {"endpoint": endpoint, "input_file_id": file_id,
                       "completion_window": str(body.get("completion_window", "24h"))}}
    try:
        job = create_campaign(owner, {"rows": rows, "template": "{prompt}", "model": model,
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
