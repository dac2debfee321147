"""GAN pages: a training form (a DCGAN or a VAE, conditional or not, on built-in digits or an uploaded
image archive) and a sampling form."""

from __future__ import annotations

from flask import Blueprint, g, redirect, render_template, request, url_for

from core.errors import InvalidInput
from core.file_checks import check_upload
from core.gan_schemas import ARCHITECTURES, BUILTIN_DATASETS, DIFFAUGMENT_POLICIES, GAN_ONLY
from web.auth import login_required
from web.csrf import check_csrf
from web.deps import get_files, get_settings, get_store
from web.request_input import form_numbers
from web.service import models_for, submit_job

bp = Blueprint("gan_ui", __name__, url_prefix="/gan")


@bp.before_request
def _upload_size_ok() -> None:
    """Archives get the upload limit, set before the CSRF check parses the form."""
    request.max_content_length = get_settings().max_upload_bytes


bp.before_request(check_csrf)

# Defaults a 2-core CPU finishes in a few minutes on the built-in digits.
# lr and beta1 blank: the architecture's own defaults.
TRAIN_DEFAULTS = {"architecture": "dcgan", "dataset": "builtin:digits", "image_size": "32", "epochs": "20",
                  "batch_size": "64", "lr": "", "beta1": "", "nz": "100", "ngf": "32", "ndf": "32", "seed": "0",
                  "ema_decay": "0.999", "r1_gamma": "0", "label_smoothing": "0.1", "sample_every": "1",
                  "max_images": ""}
TRAIN_NUMBERS = {"image_size": int, "epochs": int, "batch_size": int, "lr": float, "beta1": float, "nz": int,
                 "ngf": int, "ndf": int, "seed": int, "ema_decay": float, "r1_gamma": float,
                 "label_smoothing": float, "sample_every": int, "max_images": int}
DEFAULT_POLICY = ("translation", "cutout")
SAMPLE_DEFAULTS = {"model": "", "n": "64", "seed": "0", "to_seed": "", "steps": "8", "class": ""}


def _render(train=None, sample=None, policy=DEFAULT_POLICY, error=None, status=200, conditional=False):
    datasets = [{"id": k, "label": f"{k} ({v})"} for k, v in BUILTIN_DATASETS.items()]
    datasets += [{"id": f["id"], "label": f"{f['filename']} ({f['id']})"}
                 for f in get_files().list(g.ui_owner, purpose="gan-dataset")]
    jobs = [j for kind in ("gan.train", "gan.sample") for j in get_store().list(g.ui_owner, kind, None, 20)[0]]
    jobs.sort(key=lambda j: j["created_at"], reverse=True)
    sample = sample or dict(SAMPLE_DEFAULTS, model=request.args.get("model", ""))
    return render_template("gan.html", train=train or TRAIN_DEFAULTS, sample=sample, policy=policy,
                           conditional=conditional, architectures=ARCHITECTURES, policies=DIFFAUGMENT_POLICIES, datasets=datasets, models=models_for(g.ui_owner, "gan"),
                           jobs=jobs[:20], error=error), status


@bp.get("")
@login_required
def index():
    return _render()


@bp.post("/train")
@login_required
def train():
    values = {k: request.form.get(k, v) for k, v in TRAIN_DEFAULTS.items()}
    policy = tuple(p for p in DIFFAUGMENT_POLICIES if request.form.get(f"aug_{p}"))
    conditional = request.form.get("conditional") == "1"
    stored = None
    try:
        data = {"architecture": values["architecture"], "conditional": conditional, "dataset": values["dataset"],
                "diffaugment": ",".join(policy), **form_numbers(request.form, TRAIN_NUMBERS)}
        if data["architecture"] == "vae":
            for name in GAN_ONLY:  # the form always shows them; a VAE has no use for them
                data.pop(name, None)
        archive = request.files.get("archive")
        if archive is not None and archive.filename:
            # An archive chosen here wins over the list; it is checked before anything is stored.
            content = archive.read()
            check_upload("gan-dataset", content)
            stored = data["dataset"] = get_files().create(g.ui_owner, archive.filename, "gan-dataset", content)["id"]
        job, _ = submit_job(g.ui_owner, {"kind": "gan.train", "input": data})
    except InvalidInput as exc:
        if stored is not None:  # stored for this submission only: it goes with the refusal
            get_files().delete(stored, g.ui_owner)
        if exc.param == "file":  # the archive check names the upload
            exc.param = "input.archive"
        return _render(train=values, policy=policy, error=exc, status=400, conditional=conditional)
    return redirect(url_for("ui.job_page", job_id=job["id"]))


@bp.post("/sample")
@login_required
def sample():
    values = {k: request.form.get(k, v) for k, v in SAMPLE_DEFAULTS.items()}
    try:
        data = {"model": values["model"], **form_numbers(request.form, {"n": int, "seed": int})}
        if values["class"].strip():
            data["class"] = values["class"].strip()  # the picker's values are class names
        lerp = form_numbers(request.form, {"to_seed": int, "steps": int})
        if "to_seed" in lerp:
            data["interpolate"] = lerp
        job, _ = submit_job(g.ui_owner, {"kind": "gan.sample", "input": data})
    except InvalidInput as exc:
        if exc.param in ("input.to_seed", "input.steps"):
            exc.param = exc.param.replace("input.", "input.interpolate.")
        return _render(sample=values, error=exc, status=400)
    return redirect(url_for("ui.job_page", job_id=job["id"]))
