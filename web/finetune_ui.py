"""Fine-tune pages: a form that starts a text.finetune job, and the job page's checkpoints, pause and resume."""

from __future__ import annotations

from flask import Blueprint, g, jsonify, redirect, render_template, request, url_for

from core import schemas
from core.catalog import DEFAULT_TEXT_MODEL
from core.errors import InvalidInput, TooLarge
from core.file_checks import FINE_TUNE, check_upload
from core.finetune_names import checkpoint_model_id, kept_checkpoints
from core.schemas import FinetuneHyperparameters, LoraSettings, TextFinetuneInput
from core.shapes import defaults
from web import finetune_jobs
from web.auth import login_required
from web.csrf import check_csrf
from web.deps import get_files, get_settings, get_store
from web.finetune_jobs import KIND, finetune_job
from web.form_fields import in_words, number_bounds
from web.service import models_for, owner_lookups, submit_job

bp = Blueprint("finetune_ui", __name__, url_prefix="/finetune")


@bp.before_request
def _upload_size_ok() -> None:
    """Training files get the upload limit, as POST /v1/files does, checked before the CSRF check
    parses the form."""
    limit = get_settings().max_upload_bytes
    if request.content_length and request.content_length > limit:
        raise TooLarge(f"Uploads are limited to {limit} bytes", param="file")
    request.max_content_length = limit


bp.before_request(check_csrf)

# The form's number fields of FinetuneHyperparameters: (name, label, step). Their defaults and
# bounds are read from the shape; the advanced ones sit folded away.
MAIN_FIELDS = [("epochs", "Epochs", "1"), ("batch_size", "Batch size", "1"), ("learning_rate", "Learning rate", "any")]
ADVANCED_FIELDS = [("max_steps", "Max steps (overrides epochs)", "1"), ("block_size", "Block size (tokens)", "1"),
                   ("warmup_steps", "Warmup steps", "1"), ("eval_every", "Evaluate every N steps", "1"),
                   ("checkpoint_every", "Checkpoint every N steps", "1"), ("seed", "Seed", "1")]
_CASTS = {name: float if step == "any" else int for name, _, step in MAIN_FIELDS + ADVANCED_FIELDS}
METHODS = {"auto": "Auto (LoRA for bases over 50M parameters)", "lora": "LoRA adapter", "full": "Full (every weight)"}

# Where each input field's problems are shown (the form's field id) and the label they are read under.
_HP = "input.hyperparameters."
FIELDS = {"input.base_model": "base_model", "input.training_file": "training_file", "file": "training_upload",
          "input.validation_file": "validation_file", "input.suffix": "suffix", _HP + "lora": "method",
          _HP + "lora.r": "lora_r", **{_HP + name: name for name in _CASTS}}
LABELS = {"input.base_model": "Base model", "input.training_file": "Training file",
          "input.validation_file": "Validation file", "input.suffix": "Suffix", _HP + "lora": "Method",
          _HP + "lora.r": "LoRA rank",
          **{_HP + name: label.split(" (")[0] for name, label, _ in MAIN_FIELDS + ADVANCED_FIELDS}}


def _shown(value) -> str:
    return "" if value is None else str(value)


# What the form shows before a user types: the declared defaults, never written out here.
HP_DEFAULTS = {name: _shown(value) for name, value in defaults(FinetuneHyperparameters).items() if name in _CASTS}
DEFAULTS = {"base_model": DEFAULT_TEXT_MODEL, "training_file": "", "validation_file": "", "method": "auto",
            "suffix": defaults(TextFinetuneInput)["suffix"], "lora_r": _shown(defaults(LoraSettings)["r"]),
            **HP_DEFAULTS}


def _number(raw: str, cast):
    """A form string as a number; one that is not goes on as typed, and the job's shape names its
    field ("must be an integer") beside every other problem."""
    raw = raw.strip()
    if not raw:
        return None
    try:
        return cast(raw)
    except ValueError:
        return raw


def form_input(values: dict) -> dict:
    """text.finetune input from the form's values (blank fields left to their defaults)."""
    hp = {name: n for name, cast in _CASTS.items() if (n := _number(values[name], cast)) is not None}
    if values["method"] == "lora":
        r = _number(values["lora_r"], int)
        hp["lora"] = {"r": r} if r is not None else True
    elif values["method"] == "full":
        hp["lora"] = False
    elif values["method"] != "auto":
        hp["lora"] = values["method"]  # refused by the shape, under Method
    inp = {"base_model": values["base_model"], "hyperparameters": hp}
    for name in ("training_file", "validation_file", "suffix"):
        if values[name].strip():
            inp[name] = values[name].strip()
    return inp


def form_problems(errors: list[dict]) -> tuple[dict[str, list[str]], list[str]]:
    """({field id: [messages in words]}, [the rest]): each problem beside its field."""
    by_field: dict[str, list[str]] = {}
    general = []
    for e in errors:
        param = e.get("param") or ""
        message = in_words(e["message"], LABELS)
        if param in FIELDS:
            by_field.setdefault(FIELDS[param], []).append(message)
        else:
            general.append(message)
    return by_field, general


def _render(values: dict, errors: list[dict] = (), status: int = 200):
    owner, settings = g.ui_owner, get_settings()
    by_field, general = form_problems(list(errors))
    bounds = number_bounds(FinetuneHyperparameters, settings, {n: s for n, _, s in MAIN_FIELDS + ADVANCED_FIELDS})
    bounds["lora_r"] = number_bounds(LoraSettings, settings, {"r": "1"})["r"]
    jobs, _ = get_store().list(owner, KIND, None, 10)
    return render_template(
        "finetune.html", values=values, by_field=by_field, general=general, bounds=bounds,
        main_fields=MAIN_FIELDS, advanced_fields=ADVANCED_FIELDS, methods=METHODS, defaults=DEFAULTS,
        models=models_for(owner, "text"), files=get_files().list(owner, purpose=FINE_TUNE), jobs=jobs,
        advanced_open=any(name in by_field for name, _, _ in ADVANCED_FIELDS),
        max_upload_bytes=settings.max_upload_bytes), status


def _store_upload(values: dict) -> list[dict]:
    """A file chosen in the form is checked, stored and becomes the training file; its problems."""
    upload = request.files.get("training_upload")
    if upload is None or not upload.filename:
        return []
    data = upload.read()
    try:
        check_upload(FINE_TUNE, data)
    except InvalidInput as exc:
        return [dict(e, param="file") for e in exc.errors or [exc.to_dict()]]
    # Kept even if another field is refused: the form shows it picked, so a fix is not an upload again.
    values["training_file"] = get_files().create(g.ui_owner, upload.filename, FINE_TUNE, data)["id"]
    return []


def _other_problems(inp: dict) -> list[dict]:
    """Every problem of the input but its training file (one the upload check already refused)."""
    try:
        schemas.job_create({"kind": KIND, "input": inp}, get_settings(), owner_lookups(g.ui_owner))
    except InvalidInput as exc:
        return [e for e in exc.errors or [exc.to_dict()] if e.get("param") != "input.training_file"]
    return []


@bp.route("/new", methods=["GET", "POST"])
@login_required
def new():
    """The form; a valid submission makes a text.finetune job as POST /v1/fine_tuning/jobs does (an
    ftjob- id) and goes to its page."""
    values = dict(DEFAULTS)
    if request.method == "GET":
        return _render(values)
    values.update({k: request.form.get(k, v) for k, v in DEFAULTS.items()})
    upload_errors = _store_upload(values)
    inp = form_input(values)
    if upload_errors:
        return _render(values, upload_errors + _other_problems(inp), 400)
    try:
        job, _ = submit_job(g.ui_owner, {"kind": KIND, "input": inp}, id_prefix="ftjob-")
    except InvalidInput as exc:
        return _render(values, exc.errors or [exc.to_dict()], 400)
    return redirect(url_for("ui.job_page", job_id=job["id"]))


def _finetune_job(job_id: str) -> dict:
    """The signed-in owner's fine-tune job; 404 for another owner's job or another kind."""
    return finetune_job(job_id, g.ui_owner, param="job_id")


def checkpoint_rows(job: dict) -> list[dict]:
    """The kept checkpoints, newest first: step, losses, and the model each is once the job succeeded."""
    rows = []
    for ckpt in reversed(kept_checkpoints(job)):
        metrics = ckpt.get("metrics") or {}
        rows.append({"step": ckpt["step"], "train_loss": metrics.get("train_loss"),
                     "valid_loss": metrics.get("valid_loss"), "model": checkpoint_model_id(job, ckpt["step"])})
    return rows


@bp.get("/<job_id>.json")
@login_required
def job_json(job_id):
    """What the job page adds for a fine-tune (session-authenticated): its checkpoints and whether
    a pause waits for the worker's next step."""
    job = _finetune_job(job_id)
    return jsonify({"checkpoints": checkpoint_rows(job), "pause_requested": job["pause_requested"]})


@bp.post("/<job_id>/pause")
@login_required
def pause(job_id):
    """Queued: paused at once. Running: the worker checkpoints at its next step, then pauses. Any
    other status (a page left open) changes nothing; the page shows the job as it is."""
    finetune_jobs.pause(_finetune_job(job_id))
    return redirect(url_for("ui.job_page", job_id=job_id))


@bp.post("/<job_id>/resume")
@login_required
def resume(job_id):
    """A paused job goes back to the queue and continues from its last checkpoint; a pause not yet
    taken is withdrawn. Any other status changes nothing."""
    finetune_jobs.resume(_finetune_job(job_id))
    return redirect(url_for("ui.job_page", job_id=job_id))
