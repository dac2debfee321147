"""Who is calling: a Bearer API key for /v1, a signed session cookie (holding the key's digest) for pages."""

from __future__ import annotations

from functools import wraps

from flask import g, redirect, request, session, url_for

from core import logs
from core.errors import Unauthorized
from core.keys import key_digest
from web.deps import get_keys
from web.limits import check_request_rate


def api_owner() -> str:
    """The owner behind the request's Bearer key; 401 for a missing, wrong or revoked key, 429
    past the key's requests per minute."""
    if "owner" not in g:
        header = request.headers.get("Authorization", "")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise Unauthorized("Missing API key: send 'Authorization: Bearer <key>'")
        g.owner = get_keys().authenticate(key.strip())
        logs.note(owner=g.owner)  # the request's log lines say whose they are
        g.key_id = key_digest(key.strip())[:24]
        check_request_rate(g.key_id)
    return g.owner


def caller_key_id() -> str:
    """Which key the caller's limits count against: the Bearer key's, or the signed-in session's."""
    return g.get("key_id") or (session.get("key_digest") or "")[:24] or "anonymous"


def session_owner() -> str | None:
    """The signed-in owner, re-checked against the key store so a revoked key signs out."""
    digest = session.get("key_digest")
    if not digest:
        return None
    try:
        return get_keys().owner_for_digest(digest)
    except Unauthorized:
        session.clear()
        return None


def login_required(view):
    """Pages for the signed-in owner (in `g.ui_owner`): others are sent to sign in, and a page's
    JSON poll (`*.json`) gets a 401 instead of a redirect it cannot follow."""
    @wraps(view)
    def wrapper(*args, **kwargs):
        g.ui_owner = session_owner()
        if g.ui_owner is None:
            if request.path.endswith(".json"):
                raise Unauthorized("Signed out")
            return redirect(url_for("ui.login", next=request.path))
        return view(*args, **kwargs)
    return wrapper
