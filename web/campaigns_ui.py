"""Campaign pages: upload a sheet with a live preview of the prompts, watch the counts, download outputs."""

from __future__ import annotations

import json

from flask import Blueprint, g, jsonify, redirect, render_template, request, url_for

from core.campaigns import check_template, chunk_key, parse_table, render
from core.catalog import DEFAULT_TEXT_MODEL
from core.errors import InvalidInput, NotFound
from core.file_checks import check_upload
from web.auth import login_required
from web.campaigns_api import KIND, campaign_view, cancel_campaign, create_campaign, get_campaign
from web.csrf import check_csrf
from web.deps import get_files, get_settings, get_storage, get_store
from web.live import event_stream_response
from web.service import artifact_response, models_for

bp = Blueprint("campaigns_ui", __name__, url_prefix="/campaigns")


@bp.before_request
def _upload_size_ok() -> None:
    """Sheets get the upload limit, set before the CSRF check parses the form."""
    request.max_content_length = get_settings().max_upload_bytes


bp.before_request(check_csrf)

_DEFAULTS = {"template": "Write a short ad for {product} aimed at {audience}:", "model": DEFAULT_TEXT_MODEL,
             "n": "1", "max_new_tokens": "48", "temperature": "0.8", "seed": "0"}


@bp.get("")
@login_required
def index():
    jobs, _ = get_store().list(g.ui_owner, KIND, None, 50)
    return render_template("campaigns.html", campaigns=[campaign_view(j) for j in jobs],
                           values=_DEFAULTS, models=models_for(g.ui_owner, "text"), error=None)


@bp.post("/preview")
@login_required
def preview():
    """The first rendered prompts for a sheet and template, or the error the campaign would get."""
    try:
        sheet = request.files.get("file")
        if sheet is None:
            raise InvalidInput("Choose a CSV or JSONL file", param="file")
        table = parse_table(sheet.read())
        template = request.form.get("template", "")
        check_template(template, table.columns)
        return jsonify({"rows": len(table.rows), "columns": table.columns,
                        "prompts": [render(template, row) for row in table.rows[:5]]})
    except InvalidInput as exc:
        return jsonify({"error": exc.to_dict()}), 400


@bp.post("")
@login_required
def create():
    values = {k: request.form.get(k, v) for k, v in _DEFAULTS.items()}
    record = None
    try:
        sheet = request.files.get("file")
        if sheet is None or not sheet.filename:
            raise InvalidInput("Choose a CSV or JSONL file", param="file")
        data = sheet.read()
        check_upload("campaign", data)
        record = get_files().create(g.ui_owner, sheet.filename, "campaign", data)
        numbers = {}
        for name, cast in (("n", int), ("max_new_tokens", int), ("temperature", float), ("seed", int)):
            try:
                numbers[name] = cast(values[name])
            except ValueError:
                raise InvalidInput(f"{name} must be a number", param=name) from None
        job = create_campaign(g.ui_owner, {
            "input_file": record["id"], "template": values["template"], "model": values["model"],
            "n": numbers["n"], "generation": {"max_new_tokens": numbers["max_new_tokens"],
                                              "temperature": numbers["temperature"], "seed": numbers["seed"]}})
    except InvalidInput as exc:
        if record is not None:  # stored for this submission only: it goes with the refusal
            get_files().delete(record["id"], g.ui_owner)
        jobs, _ = get_store().list(g.ui_owner, KIND, None, 50)
        return render_template("campaigns.html", campaigns=[campaign_view(j) for j in jobs], values=values,
                               models=models_for(g.ui_owner, "text"), error=exc), 400
    return redirect(url_for("campaigns_ui.page", campaign_id=job["id"]))


@bp.get("/<campaign_id>")
@login_required
def page(campaign_id):
    return render_template("campaign.html", campaign=campaign_view(get_campaign(campaign_id, g.ui_owner)),
                           preview=first_outputs(campaign_id))


PREVIEW_ROWS = 10


def first_outputs(campaign_id: str) -> list[dict]:
    """The first generated rows with their prompts, read from the first chunk (a few hundred KB at
    most), so the page shows what the campaign writes without downloading the CSV; [] until that
    chunk is done."""
    storage = get_storage()
    try:
        outputs = [json.loads(line) for line in storage.get_bytes(chunk_key(campaign_id, "output", 0)).splitlines()
                   if line.strip()][:PREVIEW_ROWS]
        prompts = {row["index"]: row["prompt"] for row in map(json.loads, storage.get_bytes(
            chunk_key(campaign_id, "input", 0)).splitlines()) if "prompt" in row}
    except NotFound:
        return []
    return [{"row": o["row"], "variant": o["variant"], "prompt": prompts.get(o["row"], ""), "text": o["text"]}
            for o in outputs]


@bp.get("/<campaign_id>/live")
@login_required
def live(campaign_id):
    """The campaign's events as server-sent events, live until it ends (what its page follows)."""
    get_campaign(campaign_id, g.ui_owner)
    return event_stream_response(get_store(), campaign_id, -1)


@bp.get("/<campaign_id>.json")
@login_required
def as_json(campaign_id):
    return jsonify(campaign_view(get_campaign(campaign_id, g.ui_owner)))


@bp.post("/<campaign_id>/cancel")
@login_required
def cancel(campaign_id):
    cancel_campaign(campaign_id, g.ui_owner)
    return redirect(url_for("campaigns_ui.page", campaign_id=campaign_id))


@bp.get("/<campaign_id>/artifacts/<name>")
@login_required
def download(campaign_id, name):
    return artifact_response(get_campaign(campaign_id, g.ui_owner), name)
