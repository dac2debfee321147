"""The chat page: a conversation with a model, replies streamed as they are written (the same work as POST /v1/chat/completions, signed in by session)."""

from __future__ import annotations

import json

from flask import Blueprint, g, render_template, request

from core.catalog import DEFAULT_TEXT_MODEL
from core.errors import AigcError
from core.schemas import TextChatInput
from core.text_checks import unencodable_message, unencodable_path
from core.shapes import defaults
from web.auth import login_required
from web.csrf import check_csrf
from web.errors import error_response
from web.openai_api import chat_completion
from web.service import models_for

bp = Blueprint("chat_ui", __name__, url_prefix="/chat")
bp.before_request(check_csrf)

DEFAULT_MODEL = DEFAULT_TEXT_MODEL


@bp.get("")
@login_required
def index():
    """The chat; `?model=` picks the model (a fine-tune's page links here with its model), where the
    owner may name it."""
    models = models_for(g.ui_owner, "text")
    ids = [m["id"] for m in models]
    asked = request.args.get("model", "")
    default = asked if asked in ids else DEFAULT_MODEL if DEFAULT_MODEL in ids else (ids[0] if ids else "")
    return render_template("chat.html", models=models, default_model=default, values=defaults(TextChatInput))


@bp.post("/send")
@login_required
def send():
    """The page's request: a chat completion body in the form field `body` (the form carries the
    CSRF token); the answer is the API's own, a stream or an error in its JSON shape."""
    try:
        body = json.loads(request.form.get("body", ""))
    except (ValueError, RecursionError):
        return error_response(400, "invalid_json", "body must be a chat completion request as JSON", "body")
    if not isinstance(body, dict):
        return error_response(400, "invalid_input", "body must be a JSON object", "body")
    bad = unencodable_path(body)
    if bad is not None:
        return error_response(400, "invalid_input", unencodable_message(bad), bad)
    try:
        return chat_completion(g.ui_owner, {**body, "stream": True})
    except AigcError as exc:  # JSON for the page's script, not an error page
        return error_response(exc.status, exc.code, exc.message, exc.param, exc.errors)


