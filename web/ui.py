"""HTML pages: sign in with an API key, submit a generation job, watch it, list my jobs."""

from __future__ import annotations

import re
from datetime import datetime, timezone

from flask import Blueprint, g, jsonify, redirect, render_template, request, session, url_for

from core.catalog import DEFAULT_TEXT_MODEL, context_tokens
from core.clock import parse_iso
from core.schemas import TextGenerateInput
from core.shapes import defaults
from core.errors import InvalidInput, Unauthorized
from core.job_kinds import KINDS
from core.jobs import STATUSES, TERMINAL
from core.keys import key_digest
from web.auth import login_required, session_owner
from web.csrf import check_csrf, csrf_token
from web.deps import get_keys, get_settings, get_store
from web.form_fields import in_words, number_bounds
from web.live import event_stream_response
from web.request_input import form_numbers, int_arg
from web.service import artifact_response, job_view, models_for, submit_job

bp = Blueprint("ui", __name__)
_SAFE_NEXT = re.compile(r"/(?!/)[A-Za-z0-9_./-]*")
bp.before_request(check_csrf)


@bp.app_context_processor
def template_globals():
    return {"csrf_token": csrf_token, "owner": g.get("ui_owner")}


@bp.get("/")
def index():
    return redirect(url_for("ui.jobs_list" if session_owner() else "ui.login"))


@bp.route("/login", methods=["GET", "POST"])
def login():
    error = None
    if request.method == "POST":
        key = request.form.get("api_key", "").strip()
        try:
            get_keys().authenticate(key)
        except Unauthorized as exc:
            error = exc.message
        else:
            session.clear()
            session.permanent = True
            session["key_digest"] = key_digest(key)
            target = request.args.get("next", "")
            # Only plain local paths: never bounce a signed-in user to another site.
            return redirect(target if _SAFE_NEXT.fullmatch(target) else url_for("ui.jobs_list"))
    return render_template("login.html", error=error), 401 if error else 200


@bp.post("/logout")
def logout():
    session.clear()
    return redirect(url_for("ui.login"))


@bp.get("/jobs")
@login_required
def jobs_list():
    """Newest first, filtered by kind and status; the page reloads itself while a listed job runs."""
    kind = request.args.get("kind") or None
    status = request.args.get("status") or None
    if kind not in (None, *KINDS) or status not in (None, *STATUSES):
        kind = status = None  # a hand-edited link: the whole list rather than an error page
    jobs, cursor = get_store().list(g.ui_owner, kind, status, limit=50, after=request.args.get("after") or None)
    return render_template("jobs.html", jobs=jobs, cursor=cursor, kind=kind or "", status=status or "",
                           kinds=sorted(KINDS), statuses=STATUSES, summary=job_summary, age=age,
                           active=any(j["status"] not in TERMINAL for j in jobs))


def age(created_at: str, now: datetime | None = None) -> str:
    """How long ago, as a person reads a list: "12 s ago", "3 min ago", "2 h ago", "4 d ago"."""
    seconds = max(0, int(((now or datetime.now(timezone.utc)) - parse_iso(created_at)).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


def job_summary(job: dict) -> str:
    """A few words on what a job was asked to do, for the list."""
    inp = job.get("input") or {}
    if job["kind"] == "text.chat":
        last = next((m["content"] for m in reversed(inp.get("messages") or []) if m.get("role") == "user"), "")
        text = f"{inp.get('model', '')}: {last}"
    elif job["kind"] == "text.generate":
        text = f"{inp.get('model', '')}: {inp.get('prompt', '')}"
    elif job["kind"] == "gan.train":
        text = " ".join(filter(None, ["conditional" if inp.get("conditional") else "",
                                      inp.get("architecture", "dcgan"), "on", inp.get("dataset", ""),
                                      f"{inp.get('epochs')} epochs"]))
    elif job["kind"] == "gan.sample":
        asked = inp.get("prompt") or (f"class {inp['class']}" if inp.get("class") is not None else "")
        text = f"{inp.get('model', '')}: {inp.get('n')} images" + (f", {asked}" if asked else "")
    elif job["kind"] == "text.finetune":
        text = f"{inp.get('base_model', '')} on {inp.get('training_file', '')}"
    elif job["kind"] == "campaign":
        text = f"{inp.get('model', '')}: {inp.get('rows', '?')} rows"
    else:
        text = ""
    return text if len(text) <= 80 else text[:79] + "…"


# The form's number fields: (name, label, step); their min and max come from the declared limits.
NUMBER_FIELDS = [("max_new_tokens", "Max new tokens", "1"), ("temperature", "Temperature", "0.05"),
                 ("top_p", "Top p", "0.05"), ("top_k", "Top k", "1"), ("n", "Choices (n)", "1"),
                 ("seed", "Seed (optional)", "1")]
FORM_LABELS = {"input.model": "Model", "input.prompt": "Prompt", "input.stop": "Stop sequences",
               **{f"input.{name}": label for name, label, _ in NUMBER_FIELDS}}

# What the form shows before a user types: the declared defaults of text.generate's input.
_FORM_DEFAULTS = {**{k: "" if v is None else str(v) for k, v in defaults(TextGenerateInput).items()},
                  "stop": "", "prompt": "", "model": DEFAULT_TEXT_MODEL}


def _form_to_input(form) -> dict:
    data = {"model": form.get("model", ""), "prompt": form.get("prompt", ""), **form_numbers(form, {
        "max_new_tokens": int, "temperature": float, "top_p": float, "top_k": int, "n": int, "seed": int})}
    stops = [s for s in form.get("stop", "").split("\n") if s.strip()]
    if stops:
        data["stop"] = [s.rstrip("\r") for s in stops]
    return data


@bp.route("/jobs/new", methods=["GET", "POST"])
@login_required
def new_job():
    values, error = dict(_FORM_DEFAULTS), None
    if request.method == "POST":
        values.update({k: request.form.get(k, "") for k in _FORM_DEFAULTS})
        try:
            job, _ = submit_job(g.ui_owner, {"kind": "text.generate", "input": _form_to_input(request.form)})
        except InvalidInput as exc:
            error = exc
        else:
            return redirect(url_for("ui.job_page", job_id=job["id"]))
    settings = get_settings()
    # Each model's context window, where the web can read it: the page caps max_new_tokens below it.
    models = [{**m, "context": context_tokens(m["id"], settings)} for m in models_for(g.ui_owner, "text")]
    bounds = number_bounds(TextGenerateInput, settings, {name: step for name, _, step in NUMBER_FIELDS})
    return render_template("new_job.html", values=values, error=error, models=models, fields=NUMBER_FIELDS,
                           bounds=bounds, in_words=lambda message: in_words(message, FORM_LABELS)), \
        400 if error else 200


@bp.get("/jobs/<job_id>")
@login_required
def job_page(job_id):
    job = get_store().get(job_id, g.ui_owner)
    return render_template("job.html", job=job_view(job), terminal=job["status"] in TERMINAL,
                           page=KINDS[job["kind"]].page)


@bp.get("/jobs/<job_id>.json")
@login_required
def job_json(job_id):
    """What the job page polls (session-authenticated; the /v1 API wants a Bearer key)."""
    return jsonify(job_view(get_store().get(job_id, g.ui_owner)))


@bp.get("/jobs/<job_id>/events.json")
@login_required
def job_events_json(job_id):
    """Events after `after`, for the page's loss curves (session-authenticated)."""
    store = get_store()
    store.get(job_id, g.ui_owner)
    return jsonify({"data": store.events(job_id, int_arg("after", -1, -1, 10**12))})


@bp.get("/jobs/<job_id>/live")
@login_required
def job_events_live(job_id):
    """The job's events as server-sent events, live until it ends (what the job page follows)."""
    store = get_store()
    store.get(job_id, g.ui_owner)
    return event_stream_response(store, job_id, int_arg("after", -1, -1, 10**12))


@bp.get("/jobs/<job_id>/artifacts/<name>")
@login_required
def artifact(job_id, name):
    """The page's download link: the same file the API serves, authorised by the session."""
    return artifact_response(get_store().get(job_id, g.ui_owner), name, inline=request.args.get("inline") == "1")


@bp.post("/jobs/<job_id>/cancel")
@login_required
def cancel(job_id):
    store = get_store()
    store.get(job_id, g.ui_owner)
    store.request_cancel(job_id)
    return redirect(url_for("ui.job_page", job_id=job_id))
