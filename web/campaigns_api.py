"""The campaigns API, v1: a sheet of rows and a template in, one generation per row (and variant) out."""

from __future__ import annotations

from flask import Blueprint, jsonify, request, url_for

from core import schemas
from core.campaign_plan import check_sheet, plan_campaign, write_plan
from core.campaigns import CampaignCounters, Table, enqueue_finalize, parse_table, table_from_rows
from core.errors import NotFound
from core.jobs import CANCELING, QUEUED, RUNNING, new_job_id
from web.auth import api_owner
from web.deps import get_celery, get_files, get_redis, get_settings, get_storage, get_store
from web.request_input import json_body
from web.limits import check_open_jobs
from web.service import artifact_response, create_with_messages, owner_lookups

bp = Blueprint("campaigns", __name__, url_prefix="/v1/campaigns")
KIND = "campaign"


def load_table(clean: dict, owner: str) -> Table:
    if clean["input_file"]:
        return parse_table(get_files().read(clean["input_file"], owner))
    return table_from_rows(clean["rows"])


def campaign_view(job: dict) -> dict:
    inp = job["input"]
    counts = CampaignCounters(get_redis()).counts(job["id"])
    return {
        "id": job["id"], "object": "campaign", "status": job["status"], "model": inp["model"],
        "template": inp["template"], "n": inp["n"], "input_file": inp.get("input_file"),
        "request_counts": {"total": inp["rows"], **counts},
        "progress": job["progress"], "output": job["output"], "error": job["error"],
        "artifacts": [dict(a, url=url_for("campaigns.get_artifact", campaign_id=job["id"], name=a["name"],
                                          _external=True)) for a in job["artifacts"] or []],
        "metadata": job["metadata"], "cancel_requested": job["cancel_requested"],
        "created_at": job["created_at"], "started_at": job["started_at"], "finished_at": job["finished_at"],
    }


def get_campaign(campaign_id: str, owner: str) -> dict:
    job = get_store().get(campaign_id, owner)
    if job["kind"] != KIND:
        raise NotFound(f"No campaign {campaign_id!r}", param="id")
    return job


def create_campaign(owner: str, body, row_params: list[dict] | None = None, extra: dict | None = None,
                    id_prefix: str = "cmp_") -> dict:
    """Validate, write the rows to storage in chunks (core/campaign_plan.py), record the campaign,
    enqueue its chunks.

    `row_params` gives each row its own generation settings (OpenAI batch lines); `extra` is
    kept on the record's input.
    """
    settings = get_settings()
    clean = schemas.campaign_create(body, settings, owner_lookups(owner))
    table = load_table(clean, owner)
    source = "input_file" if clean["input_file"] else "rows"
    check_sheet(table, clean["template"], clean["id_column"], settings.max_campaign_rows, source)
    check_open_jobs(owner)  # before the rows are written: a refused campaign leaves nothing behind
    campaign_id = new_job_id(id_prefix)
    plan = plan_campaign(table, clean["template"], clean["id_column"], row_params)
    write_plan(get_storage(), campaign_id, plan)
    chunks = len(plan.chunks)
    inp = {k: clean[k] for k in ("model", "template", "generation", "n", "id_column", "input_file")}
    inp.update(rows=plan.rows, chunks=chunks, **(extra or {}))
    job, _ = create_with_messages(owner, KIND, inp, clean["metadata"], job_id=campaign_id,
                                  messages=[("campaign.chunk", [campaign_id, c]) for c in range(chunks)])
    return job


@bp.post("")
def create():
    """202 with the campaign; 400 naming the field (unknown template columns are listed)."""
    return jsonify(campaign_view(create_campaign(api_owner(), json_body()))), 202


@bp.get("")
def list_campaigns():
    jobs, cursor = get_store().list(api_owner(), KIND, None, 100, request.args.get("after") or None)
    return jsonify({"object": "list", "data": [campaign_view(j) for j in jobs],
                    "has_more": cursor is not None, "next_cursor": cursor})


@bp.get("/<campaign_id>")
def get_one(campaign_id):
    return jsonify(campaign_view(get_campaign(campaign_id, api_owner())))


def cancel_campaign(campaign_id: str, owner: str) -> dict:
    """Stop handing out chunks; the finalizer then writes what was done and marks it canceled."""
    get_campaign(campaign_id, owner)
    store = get_store()
    outcome, _ = store.transition(campaign_id, CANCELING, only_from=(QUEUED, RUNNING), cancel_requested=1)
    if outcome == "ok" and CampaignCounters(get_redis()).claim_finalize(campaign_id):
        enqueue_finalize(get_celery().send_task, campaign_id)
    return store.get(campaign_id)


@bp.post("/<campaign_id>/cancel")
def cancel(campaign_id):
    return jsonify(campaign_view(cancel_campaign(campaign_id, api_owner())))


@bp.get("/<campaign_id>/artifacts/<name>")
def get_artifact(campaign_id, name):
    """output.jsonl, output.csv, errors.jsonl: streamed, or a redirect to a presigned URL."""
    return artifact_response(get_campaign(campaign_id, api_owner()), name)
