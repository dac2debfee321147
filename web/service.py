"""What the API and the pages share: submitting a job, showing it, and handing out its artifacts."""

from __future__ import annotations

import hashlib
import json
import logging

from flask import Response, redirect, send_file, url_for

from core import schemas, webhooks
from core.shapes import Lookups
from core.clock import unix_seconds
from core.errors import InvalidInput, NotFound
from core.catalog import list_text_models, published_text_models
from core.batches import batch_list_key
from core.job_kinds import KINDS, initial_progress
from core.jobs import new_job_id, public_job
from core.registry import public_model
from core.storage import LocalStorage, artifact_key
from web.deps import get_celery, get_files, get_redis, get_registry, get_settings, get_storage, get_store
from web.limits import check_open_jobs
from workers.task_messages import task_message

log = logging.getLogger(__name__)


def owner_lookups(owner: str) -> Lookups:
    """Validation's view of what this owner may name: their fine-tuned models and files."""
    def file(file_id: str):
        try:
            return get_files().get(file_id, owner)
        except NotFound:
            return None
    seen: dict[str, dict | None] = {}

    def image_model(model_id: str):
        # Several fields of one request ask about the same model: one registry read.
        if model_id not in seen:
            try:
                seen[model_id] = get_registry().get(model_id, owner)["info"]
            except NotFound:
                seen[model_id] = None
        return seen[model_id]
    return Lookups(owns_model=lambda model_id: get_registry().exists(model_id, owner), file=file,
                   image_model=image_model, published=lambda: published_text_models(get_redis()))


def submit_job(owner: str, body, idempotency_key: str | None = None, id_prefix: str = "job_") -> tuple[dict, bool]:
    """Validate, record and enqueue a job; (job, created). Invalid input enqueues nothing."""
    clean = schemas.job_create(body, get_settings(), owner_lookups(owner))
    idem = None
    if idempotency_key is not None:
        if not 1 <= len(idempotency_key) <= 255:
            raise InvalidInput("Idempotency-Key must be 1-255 characters", param="Idempotency-Key")
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        idem = (idempotency_key, digest)
    webhook_url = checked_webhook(owner, clean["webhook_url"]) if clean["webhook_url"] else ""
    kind, job_id = clean["kind"], new_job_id(id_prefix)
    batch = batch_list_key(owner, kind, clean["input"], adapter_group(owner, clean["input"].get("model")))
    # A batched job's message names its batch list: the worker takes the job and its batchmates.
    return create_with_messages(owner, kind, clean["input"], clean["metadata"], idem, job_id=job_id,
                                messages=[(kind, [job_id, batch] if batch else [job_id])], batch_list=batch,
                                progress=initial_progress(kind, clean["input"]), webhook_url=webhook_url)


def adapter_group(owner: str, model) -> str | None:
    """For a LoRA fine-tune, the batching group of its base's adapters; None for any other model."""
    if not isinstance(model, str) or not model.startswith("ft:"):
        return None
    try:
        record = get_registry().get(model, owner)
    except NotFound:
        return None
    return f"adapters-of:{record['base']}" if record["info"].get("adapter") else None


def checked_webhook(owner: str, url: str, param: str = "webhook_url") -> str:
    """A URL the platform may post to (public, unless AIGC_WEBHOOK_ALLOW_PRIVATE), for an owner who
    has a signing secret to verify what arrives."""
    if not get_redis().exists(webhooks.secret_key(owner)):
        raise InvalidInput("Create your webhook signing secret first (POST /v1/webhooks/secret): every "
                           "delivery is signed with it", param=param)
    return webhooks.check_url(url, get_settings().webhook_allow_private, param)


def create_with_messages(owner: str, kind: str, input: dict, metadata: dict, idem=None, *, job_id: str,
                         messages: list[tuple[str, list]], batch_list: str = "",
                         progress: dict | None = None, webhook_url: str = "") -> tuple[dict, bool]:
    """Record the job `job_id` (from new_job_id()) and push its task messages, (task name, args)
    each, in one atomic Redis step; (job, created).

    With Redis unreachable nothing is written (and the app's handler answers 503).
    """
    check_open_jobs(owner)
    # A job that names no webhook posts to the owner's default, if any (checked when it was set;
    # each delivery checks it again).
    webhook_url = webhook_url or get_redis().get(webhooks.default_url_key(owner)) or ""
    celery = get_celery()
    # Routed to each task's queue by the Celery configuration, by task name only.
    built = [task_message(celery, name, args) for name, args in messages]
    return get_store().create(owner, kind, input, metadata, idem, job_id=job_id, messages=built,
                              batch_list=batch_list, progress=progress, webhook_url=webhook_url,
                              queue=KINDS[kind].queue if kind in KINDS else "")


def models_for(owner: str, kind: str | None = None) -> list[dict]:
    """Every model this owner may name (of one kind if given): their own trained models, this
    host's models, and the workers'."""
    own = [public_model(m) for m in get_registry().list(owner)]
    here = list_text_models(get_settings())
    known = {m["id"] for m in here}
    workers = [{"id": name, "kind": "text", "source": source}
               for name, source in sorted(published_text_models(get_redis()).items()) if name not in known]
    return [_openai_model(m, owner) for m in own + here + workers if kind is None or m["kind"] == kind]


def _openai_model(entry: dict, owner: str) -> dict:
    """A model entry with OpenAI's model fields too (object, created in unix seconds, owned_by), so
    the official client's models.list() and models.retrieve() read it."""
    created = entry.get("created_at")
    return {"id": entry["id"], "object": "model",
            "created": unix_seconds(created) if created else 0,
            "owned_by": owner if entry["source"] in ("fine-tune", "training") else "aigc", **entry}


def find_model(owner: str, model_id: str) -> dict:
    """One model this owner may name, as models_for lists it; 404 otherwise."""
    for entry in models_for(owner):
        if entry["id"] == model_id:
            return entry
    raise NotFound(f"No model {model_id!r}", param="model_id")


def job_view(job: dict) -> dict:
    """The public job with a download URL on each artifact and, while it waits, its place in line."""
    view = public_job(job)
    view["queue_position"] = get_store().queue_position(job)
    view["artifacts"] = [
        dict(a, url=url_for("api.get_artifact", job_id=job["id"], name=a["name"], _external=True))
        for a in job["artifacts"] or []
    ]
    return view


INLINE_IMAGE_MAX = 4 << 20


def artifact_response(job: dict, name: str, inline: bool = False):
    """Local store: stream the file. S3: redirect to a short-lived presigned URL.

    inline: the page's <img> tags, which the pages' CSP keeps to this origin; images that
    small are relayed from storage rather than redirected to it.
    """
    entry = next((a for a in job["artifacts"] or [] if a["name"] == name), None)
    if entry is None:
        raise NotFound(f"Job {job['id']} has no artifact {name!r}", param="name")
    storage = get_storage()
    key = artifact_key(job["id"], name)
    if inline and entry["content_type"].startswith("image/") and entry["bytes"] <= INLINE_IMAGE_MAX:
        resp = Response(storage.get_bytes(key), mimetype=entry["content_type"])
        resp.headers["Cache-Control"] = "private, max-age=3600"  # a published grid never changes
        return resp
    if isinstance(storage, LocalStorage):
        resp = send_file(storage.path_for(key), mimetype=entry["content_type"], download_name=name, max_age=0)
        # The type as stored: werkzeug would add a second "; charset=utf-8" to a text/* type that has one.
        resp.headers["Content-Type"] = entry["content_type"]
        return resp
    return redirect(storage.presigned_get(key, get_settings().presign_ttl_s), code=302)
