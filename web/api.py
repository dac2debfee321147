"""The JSON API, v1: jobs, their events and artifacts, and models. Every route is owner-scoped."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from core import webhooks
from core.errors import InvalidInput
from core.jobs import STATUSES
from core.job_kinds import KINDS
from web.auth import api_owner, caller_key_id
from web.deps import get_celery, get_registry, get_storage, get_store
from web.limits import StreamSlot
from web.live import event_stream_response, wants_event_stream
from web.request_input import int_arg, json_body
from web.service import artifact_response, find_model, job_view, models_for, submit_job

bp = Blueprint("api", __name__, url_prefix="/v1")


@bp.post("/jobs")
def create_job():
    """Queue a job; 202 with the job. The same Idempotency-Key and body return the same job."""
    owner = api_owner()
    job, created = submit_job(owner, json_body(), request.headers.get("Idempotency-Key"))
    resp = jsonify(job_view(job))
    if not created:
        resp.headers["Idempotent-Replayed"] = "true"
    return resp, 202


@bp.get("/jobs")
def list_jobs():
    owner = api_owner()
    kind, status = request.args.get("kind") or None, request.args.get("status") or None
    if kind and kind not in KINDS:
        raise InvalidInput(f"kind must be one of {sorted(KINDS)}", param="kind")
    if status and status not in STATUSES:
        raise InvalidInput(f"status must be one of {list(STATUSES)}", param="status")
    limit = int_arg("limit", 20, 1, 100)
    jobs, cursor = get_store().list(owner, kind, status, limit, request.args.get("after") or None)
    return jsonify({"object": "list", "data": [job_view(j) for j in jobs],
                    "has_more": cursor is not None, "next_cursor": cursor})


@bp.get("/jobs/<job_id>")
def get_job(job_id):
    """The job; 404 if unknown or another owner's."""
    return jsonify(job_view(get_store().get(job_id, api_owner())))


@bp.post("/jobs/<job_id>/cancel")
def cancel_job(job_id):
    """Queued: canceled at once. Running: `canceling` until the worker stops. Terminal: unchanged."""
    store = get_store()
    before = store.get(job_id, api_owner())
    job = store.request_cancel(job_id)
    if before["status"] == "queued" and job["status"] == "canceled":  # no worker will say so
        webhooks.notify(get_celery().send_task, job, "job.canceled")
    return jsonify(job_view(job))


@bp.get("/jobs/<job_id>/events")
def job_events(job_id):
    """Status changes, progress, metrics and log lines with seq > `after`; with `Accept:
    text/event-stream`, the same as server-sent events, live until the job ends."""
    store = get_store()
    store.get(job_id, api_owner())
    after = int_arg("after", -1, -1, 10**12)
    if wants_event_stream():
        return event_stream_response(store, job_id, after, StreamSlot(caller_key_id()).acquire())
    events = store.events(job_id, after)
    return jsonify({"object": "list", "data": events, "next_after": events[-1]["seq"] if events else after})


@bp.get("/jobs/<job_id>/artifacts/<name>")
def get_artifact(job_id, name):
    """Streamed from the local store, or a redirect to a short-lived presigned S3 URL."""
    return artifact_response(get_store().get(job_id, api_owner()), name)


@bp.get("/models")
def list_models():
    """Built-in, local and cached Hub models, and the caller's own fine-tunes and image models; with
    `kind=text` (or `gan`) only those: what an OpenAI client lists before calling chat, say."""
    kind = request.args.get("kind") or None
    if kind not in (None, "text", "gan"):
        raise InvalidInput("kind must be text or gan", param="kind")
    return jsonify({"object": "list", "data": models_for(api_owner(), kind)})


@bp.get("/models/<path:model_id>")
def get_model(model_id):
    """Any model the caller may name: built-in, local, cached, a worker's, or their own."""
    return jsonify(find_model(api_owner(), model_id))


@bp.delete("/models/<path:model_id>")
def delete_model(model_id):
    """Remove one of the caller's fine-tuned models (its weights too); 404 for anyone else's."""
    record = get_registry().delete(model_id, api_owner())
    storage = get_storage()
    for obj in storage.list(record["prefix"]):
        storage.delete(obj.key)
    return jsonify({"id": model_id, "object": "model", "deleted": True})
