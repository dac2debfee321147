"""POST /v1/webhooks/secret: the owner's signing secret for webhooks, made (or replaced) and shown once."""

from __future__ import annotations

import time

from flask import Blueprint, jsonify

from core import webhooks
from web.auth import api_owner
from web.deps import get_redis

bp = Blueprint("webhooks_api", __name__, url_prefix="/v1")


@bp.post("/webhooks/secret")
def make_secret():
    """A new `whsec_` secret for every webhook of the caller's jobs from now on; the old one stops
    signing. Shown in this answer only: keep it where the receiver can read it."""
    secret = webhooks.new_secret()
    get_redis().set(webhooks.secret_key(api_owner()), secret)
    return jsonify({"object": "webhook.secret", "secret": secret, "created_at": int(time.time())}), 201
