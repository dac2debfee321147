"""Who is calling: a Bearer API key for /v1, a signed session cookie (holding the key's digest) for pages."""

from __future__ import annotations

from flask import g, request, session

from core.errors import Unauthorized
from web.deps import get_keys


def api_owner() -> str:
    """The owner behind the request's Bearer key; 401 for a missing, wrong or revoked key."""
    if "owner" not in g:
        header = request.headers.get("Authorization", "")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise Unauthorized("Missing API key: send 'Authorization: Bearer <key>'")
        g.owner = get_keys().authenticate(key.strip())
    return g.owner


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
