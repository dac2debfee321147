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
    models = models_for(g.ui_owner, "text")
    default = DEFAULT_MODEL if any(m["id"] == DEFAULT_MODEL for m in models) else (models[0]["id"] if models else "")
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


