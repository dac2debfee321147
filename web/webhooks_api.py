"""Webhook settings of an owner: the signing secret (made or replaced, shown once) and the default URL
that every job of theirs naming no webhook_url posts its events to."""

from __future__ import annotations

import time

from flask import Blueprint, jsonify

from core import webhooks
from core.schemas import WebhookDefault
from core.shapes import parse
from web.auth import api_owner
from web.deps import get_redis, get_settings
from web.request_input import json_body
from web.service import checked_webhook

bp = Blueprint("webhooks_api", __name__, url_prefix="/v1")


@bp.post("/webhooks/secret")
def make_secret():
    """A new `whsec_` secret for every webhook of the caller's jobs from now on; the old one stops
    signing. Shown in this answer only: keep it where the receiver can read it."""
    secret = webhooks.new_secret()
    get_redis().set(webhooks.secret_key(api_owner()), secret)
    return jsonify({"object": "webhook.secret", "secret": secret, "created_at": int(time.time())}), 201


@bp.get("/webhooks/default")
def get_default_url():
    url = get_redis().get(webhooks.default_url_key(api_owner()))
    return jsonify({"object": "webhook.default", "url": url})


@bp.put("/webhooks/default")
def set_default_url():
    """Every job of the caller's that names no webhook_url posts to this URL from now on (checked
    as a job's is: a signing secret first, and no private address unless allowed)."""
    owner = api_owner()
    req = parse(WebhookDefault, json_body(), "", get_settings())
    url = checked_webhook(owner, req.url, param="url")
    get_redis().set(webhooks.default_url_key(owner), url)
    return jsonify({"object": "webhook.default", "url": url})


@bp.delete("/webhooks/default")
def delete_default_url():
    get_redis().delete(webhooks.default_url_key(api_owner()))
    return jsonify({"object": "webhook.default", "url": None})
