"""Webhooks as Standard Webhooks sign them (what OpenAI and Replicate send): the owner's `whsec_` secret,
the checks on a job's `webhook_url`, the event payload and headers, and the retry schedule.

A job names a URL; each event (job.started, job.progress at most every AIGC_WEBHOOK_PROGRESS_EVERY_S, and
job.succeeded / failed / canceled) is a `webhook.deliver` task on the default queue
(tasks/webhooks.py), so delivery never holds up the job. A failed attempt is scheduled again in a
Redis sorted set that the workers' housekeeping releases when due: about a day of tries.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import secrets
import socket
import time
from urllib.parse import urlsplit

from core.errors import InvalidInput
from core.redisdb import PREFIX

DELIVER_TASK = "webhook.deliver"
DUE_KEY = f"{PREFIX}webhooks:due"  # sorted set: delivery (JSON) -> when it is due (epoch s)
# Pauses after each failed attempt (Standard Webhooks' schedule): about 27 hours of tries in all.
RETRY_SCHEDULE_S = (5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 10 * 3600)
TIMEOUT_S = 10
TERMINAL_EVENTS = {"succeeded": "job.succeeded", "failed": "job.failed", "canceled": "job.canceled"}


def secret_key(owner: str) -> str:
    return f"{PREFIX}webhook_secret:{owner}"


def default_url_key(owner: str) -> str:
    """The owner's default webhook URL, for every job of theirs that names none."""
    return f"{PREFIX}webhook_url:{owner}"


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def signature_headers(secret: str, event_id: str, body: str, now: int | None = None) -> dict[str, str]:
    """`webhook-id`, `webhook-timestamp` and `webhook-signature` (v1: HMAC-SHA256 over id.timestamp.body)."""
    timestamp = str(int(time.time() if now is None else now))
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{event_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return {"webhook-id": event_id, "webhook-timestamp": timestamp,
            "webhook-signature": "v1," + base64.b64encode(digest).decode()}


def _refused_address(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or ip.is_multicast
            or ip.is_unspecified)


def check_url(url: str, allow_private: bool, param: str = "webhook_url") -> str:
    """An http(s) URL whose host resolves only to public addresses (unless `allow_private`): no
    webhook may reach the platform's own network. Checked at submission and again at each delivery."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 2048:
        raise InvalidInput(f"{param} must be an http:// or https:// URL of at most 2048 characters", param=param)
    if allow_private:
        return url
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80),
                                   proto=socket.IPPROTO_TCP)
    except OSError:
        raise InvalidInput(f"{param}: the host {parts.hostname!r} does not resolve", param=param) from None
    if any(_refused_address(info[4][0]) for info in infos):
        raise InvalidInput(f"{param} resolves to a loopback, link-local or private address; webhooks go "
                           "to public hosts only (AIGC_WEBHOOK_ALLOW_PRIVATE=true allows them)", param=param)
    return url


def payload(event_id: str, event_type: str, job: dict) -> str:
    """The body: an event as OpenAI's webhooks shape it, with the job's state in `data`."""
    data = {"id": job["id"], "object": "job", "kind": job["kind"], "status": job["status"],
            "progress": job.get("progress"), "metadata": job.get("metadata") or {}}
    if job["status"] == "failed":
        data["error"] = job.get("error")
    return json.dumps({"id": event_id, "object": "event", "type": event_type, "created_at": int(time.time()),
                       "data": data}, separators=(",", ":"))


def notify(send_task, job: dict, event_type: str) -> None:
    """Queue the delivery of one event of a job that asked for webhooks (a no-op for one that did not)."""
    if job.get("webhook_url"):
        send_task(DELIVER_TASK, args=[job["id"], event_type, "evt_" + secrets.token_hex(12), 1])


def schedule_retry(client, job_id: str, event_type: str, event_id: str, attempt: int, now: float) -> bool:
    """After failed attempt `attempt`: due again after its pause; False once the schedule is spent."""
    if attempt > len(RETRY_SCHEDULE_S):
        return False
    delivery = json.dumps([job_id, event_type, event_id, attempt + 1])
    client.zadd(DUE_KEY, {delivery: now + RETRY_SCHEDULE_S[attempt - 1]})
    return True


def release_due(client, send_task, now: float, limit: int = 100) -> int:
    """Queue the deliveries now due; each is taken by one worker (ZREM decides). Returns how many."""
    released = 0
    for delivery in client.zrangebyscore(DUE_KEY, 0, now, start=0, num=limit):
        if client.zrem(DUE_KEY, delivery):
            send_task(DELIVER_TASK, args=json.loads(delivery))
            released += 1
    return released
