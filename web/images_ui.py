"""The image page: ask a conditional image model for a class, by prompt or from a picker, and see the
images in a grid that opens each one full size."""

from __future__ import annotations

from flask import Blueprint, g, redirect, render_template, request, url_for

from core.errors import InvalidInput, NotFound
from web.auth import login_required
from web.csrf import check_csrf
from web.deps import get_store
from web.request_input import form_numbers
from web.service import models_for, submit_job

bp = Blueprint("images_ui", __name__, url_prefix="/images")
bp.before_request(check_csrf)

DEFAULTS = {"model": "", "prompt": "", "class": "", "n": "8", "seed": "0", "size": "256x256"}
SIZES = ("native", "256x256", "512x512")


def conditional_models(owner: str) -> list[dict]:
    """The owner's image models that can be asked for a class, newest first."""
    return [m for m in models_for(owner, "gan") if (m.get("image") or {}).get("conditional")]


def _render(values: dict, job: dict | None = None, error: InvalidInput | None = None, status: int = 200):
    return render_template("images.html", values=values, models=conditional_models(g.ui_owner), sizes=SIZES,
                           job=job, error=error), status


@bp.get("")
@login_required
def index():
    job = None
    if request.args.get("job"):
        try:
            job = get_store().get(request.args["job"], g.ui_owner)
        except NotFound:
            job = None  # another owner's or a deleted job: the page as if none was asked for
    values = dict(DEFAULTS, model=request.args.get("model", ""))
    if job is not None and job["kind"] == "gan.sample":
        inp = job["input"]
        values.update(model=inp["model"], prompt=inp.get("prompt") or "",
                      **{"class": "" if inp.get("class") is None else str(inp["class"])},
                      n=str(inp["n"]), seed=str(inp["seed"]), size=inp.get("size") or "native")
    return _render(values, job if job is not None and job["kind"] == "gan.sample" else None)


@bp.post("")
@login_required
def generate():
    values = {k: request.form.get(k, v).strip() for k, v in DEFAULTS.items()}
    data: dict = {"model": values["model"], "image_files": True}
    try:
        data.update(form_numbers(request.form, {"n": int, "seed": int}))
        # The picker wins over the prompt: it is the more exact of the two.
        if values["class"]:
            data["class"] = values["class"]  # the picker's values are class names, never indices
        elif values["prompt"]:
            data["prompt"] = values["prompt"]
        else:
            raise InvalidInput("Type a prompt that names a class, or pick a class", param="input.prompt")
        if values["size"] and values["size"] != "native":
            data["size"] = values["size"]
        job, _ = submit_job(g.ui_owner, {"kind": "gan.sample", "input": data})
    except InvalidInput as exc:
        return _render(values, error=exc, status=400)
    return redirect(url_for("images_ui.index", job=job["id"]))
