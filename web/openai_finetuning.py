"""OpenAI's fine-tuning API: `/v1/fine_tuning/jobs` over text.finetune jobs (create, list, cancel, pause, resume, events, checkpoints)."""

from __future__ import annotations

import time

from flask import Blueprint, jsonify, request

from core import webhooks
from core.errors import InvalidInput
from core.finetune_names import checkpoint_model_id, kept_checkpoints
from core.jobs import PAUSED, QUEUED, RUNNING
from core.openai_finetune_schemas import DEFAULTS, FineTuningJobCreate, job_input, request_param
from core.shapes import parse
from web.auth import api_owner
from web import finetune_jobs
from web.deps import get_celery, get_settings, get_store
from web.finetune_jobs import KIND, finetune_job
from web.openai_objects import unix
from web.request_input import int_arg, json_body
from web.service import submit_job

bp = Blueprint("openai_finetuning", __name__, url_prefix="/v1/fine_tuning")

_STATUS = {"queued": "queued", "running": "running", "canceling": "running", "paused": "queued",
           "succeeded": "succeeded", "failed": "failed", "canceled": "cancelled"}


def fine_tuning_job(job: dict) -> dict:
    """The job as OpenAI's fine_tuning.job object (core/api_objects.py: FineTuningJob)."""
    inp, out = job["input"], job["output"] or {}
    hp = {**DEFAULTS.model_dump(), **inp.get("hyperparameters", {})}
    progress = job.get("progress") or {}
    estimated = None
    if job["status"] == RUNNING and progress.get("eta_s") is not None:
        estimated = int(time.time() + progress["eta_s"])
    error = job.get("error")
    asked = hp.get("lora") if isinstance(hp.get("lora"), dict) and hp["lora"].get("enabled") else None
    lora = out.get("lora") or ({k: v for k, v in asked.items() if k != "enabled"} if asked else None)
    hyper = {"n_epochs": hp["epochs"], "batch_size": hp["batch_size"],
             "learning_rate_multiplier": round(hp["learning_rate"] / DEFAULTS.learning_rate, 6)}
    return {
        "id": job["id"], "object": "fine_tuning.job", "created_at": unix(job["created_at"]),
        "error": {"code": error["code"], "message": error["message"],
                  "param": request_param(error.get("param"), False)} if error else None,
        "fine_tuned_model": out.get("model") if job["status"] == "succeeded" else None,
        "finished_at": unix(job["finished_at"]), "hyperparameters": hyper, "model": inp["base_model"],
        "organization_id": job["owner"], "result_files": out.get("result_files") or [], "seed": hp["seed"],
        "status": _STATUS[job["status"]], "trained_tokens": out.get("trained_tokens"),
        "training_file": inp["training_file"], "validation_file": inp.get("validation_file"),
        "estimated_finish": estimated, "integrations": [], "metadata": job["metadata"] or None,
        "method": {"type": "supervised", "supervised": {"hyperparameters": hyper}},
        "paused": job["status"] == PAUSED, "lora": lora, "progress": job.get("progress"),
    }


@bp.post("/jobs")
def create():
    """Check the request in OpenAI's terms, then queue a text.finetune job (id ftjob-...)."""
    owner = api_owner()
    body = json_body()
    req = parse(FineTuningJobCreate, body, "", get_settings())
    via_method = bool(req.method and req.method.supervised and req.method.supervised.hyperparameters)
    try:
        job, _ = submit_job(owner, {"kind": KIND, "input": job_input(req), "metadata": req.metadata},
                            request.headers.get("Idempotency-Key"), id_prefix="ftjob-")
    except InvalidInput as exc:
        # Named as the caller sent them: n_epochs, not input.hyperparameters.epochs.
        param = request_param(exc.param, via_method)
        errors = [dict(e, param=request_param(e.get("param"), via_method)) for e in exc.errors or []] or None
        raise InvalidInput(exc.message.replace(exc.param or "\0", param or ""), param=param, code=exc.code,
                           errors=errors) from None
    return jsonify(fine_tuning_job(job))


@bp.get("/jobs")
def list_jobs():
    """Newest first; `after` (a job id) and `limit` page through them."""
    jobs, cursor = get_store().list(api_owner(), KIND, None, int_arg("limit", 20, 1, 100),
                                    request.args.get("after") or None)
    return jsonify({"object": "list", "data": [fine_tuning_job(j) for j in jobs], "has_more": cursor is not None})


@bp.get("/jobs/<job_id>")
def retrieve(job_id):
    return jsonify(fine_tuning_job(finetune_job(job_id, api_owner())))


@bp.post("/jobs/<job_id>/cancel")
def cancel(job_id):
    """Queued or paused: cancelled at once. Running: cancelled at the worker's next step."""
    before = finetune_job(job_id, api_owner())
    if before["status"] not in (QUEUED, RUNNING, PAUSED, "canceling"):
        raise InvalidInput(f"The job is {_STATUS[before['status']]}; only a queued, running or paused job can be "
                           "cancelled", param="fine_tuning_job_id")
    job = get_store().request_cancel(job_id)
    if before["status"] in (QUEUED, PAUSED) and job["status"] == "canceled":  # no worker will say so
        webhooks.notify(get_celery().send_task, job, "job.canceled")
    return jsonify(fine_tuning_job(job))


@bp.post("/jobs/<job_id>/pause")
def pause(job_id):
    """Queued: paused at once. Running: the worker checkpoints at its next step and lets the job go
    (the answer may still read running; it reads paused once that is done)."""
    before = finetune_job(job_id, api_owner())
    if before["status"] not in (QUEUED, RUNNING, PAUSED):
        raise InvalidInput(f"The job is {_STATUS[before['status']]}; only a queued or running job can be paused",
                           param="fine_tuning_job_id")
    return jsonify(fine_tuning_job(finetune_jobs.pause(before)))


@bp.post("/jobs/<job_id>/resume")
def resume(job_id):
    """A paused job goes back to the queue and continues from its last checkpoint; a pause not yet
    taken by the worker is withdrawn."""
    outcome = finetune_jobs.resume(finetune_job(job_id, api_owner()))
    if outcome not in ("resumed", "unpaused"):
        raise InvalidInput(f"The job is {_STATUS.get(outcome, outcome)}, not paused", param="fine_tuning_job_id")
    return jsonify(fine_tuning_job(get_store().get(job_id)))


# -- events ----------------------------------------------------------------------------------------

def _event_object(job: dict, seq: int, event: dict) -> dict | None:
    """One job event as a fine_tuning.job.event; None for those OpenAI has no counterpart of
    (progress ticks: the job's `progress` carries them)."""
    kind, level, data = event["type"], "info", None
    if kind == "status":
        status = event["status"]
        if status == QUEUED:
            message = "Fine-tuning job resumed" if event.get("resumed") else "Created fine-tuning job"
        elif status == RUNNING:
            attempt = event.get("attempt", 1)
            message = "Fine-tuning job started" + (f" (attempt {attempt}, from the last checkpoint)"
                                                   if attempt > 1 else "")
            data = {k: event[k] for k in ("worker", "device", "precision") if k in event} or None
        elif status == PAUSED:
            message = "Fine-tuning job paused" + (f" at step {event['step']}" if event.get("step") else "")
        elif status == "succeeded":
            message = "The job has successfully completed"
        elif status == "failed":
            level, message = "error", "The job failed: " + ((job.get("error") or {}).get("message") or "")
        elif status == "canceled":
            message = "The job was cancelled"
        else:
            message = f"Fine-tuning job {status}"
    elif kind == "metric":
        message = f"Step {event['step']}: {event['name']}={event['value']}"
        kind, data = "metrics", {"step": event["step"], event["name"]: event["value"]}
    elif kind == "log":
        message = event["message"]
        level = "warn" if "lost" in message or "shutting down" in message else "info"
    else:
        return None
    return {"id": f"ftevent-{job['id'].removeprefix('ftjob-')}-{seq}", "object": "fine_tuning.job.event",
            "created_at": unix(event["ts"]), "level": level, "message": message,
            "type": "metrics" if kind == "metrics" else "message", "data": data}


def fine_tuning_events(job: dict) -> list[dict]:
    """Every event OpenAI would show, newest first (as its API lists them)."""
    events = get_store().events(job["id"], -1, 100_000)
    out = [_event_object(job, e["seq"], e) for e in events]
    return [e for e in reversed(out) if e is not None]


def _page(items: list[dict], after: str | None, limit: int) -> tuple[list[dict], bool]:
    start = 0
    if after:
        ids = [i["id"] for i in items]
        if after not in ids:
            raise InvalidInput(f"No item {after!r} to list after", param="after")
        start = ids.index(after) + 1
    page = items[start:start + limit]
    return page, start + limit < len(items)


@bp.get("/jobs/<job_id>/events")
def events(job_id):
    job = finetune_job(job_id, api_owner())
    page, more = _page(fine_tuning_events(job), request.args.get("after") or None, int_arg("limit", 20, 1, 1000))
    return jsonify({"object": "list", "data": page, "has_more": more})


# -- checkpoints -------------------------------------------------------------------------------------

def checkpoint_objects(job: dict) -> list[dict]:
    """The kept checkpoints, newest first; each names the model it is once the job has succeeded."""
    out = []
    for ckpt in reversed(kept_checkpoints(job)):
        metrics = {k: float(v) for k, v in (ckpt.get("metrics") or {}).items() if isinstance(v, (int, float))}
        out.append({"id": f"ftckpt-{job['id'].removeprefix('ftjob-')}-{ckpt['step']}",
                    "object": "fine_tuning.job.checkpoint", "created_at": ckpt.get("created_at") or 0,
                    "fine_tuned_model_checkpoint": checkpoint_model_id(job, ckpt["step"]),
                    "fine_tuning_job_id": job["id"], "metrics": metrics, "step_number": ckpt["step"]})
    return out


@bp.get("/jobs/<job_id>/checkpoints")
def checkpoints(job_id):
    job = finetune_job(job_id, api_owner())
    page, more = _page(checkpoint_objects(job), request.args.get("after") or None, int_arg("limit", 10, 1, 100))
    return jsonify({"object": "list", "data": page, "has_more": more,
                    "first_id": page[0]["id"] if page else None, "last_id": page[-1]["id"] if page else None})
