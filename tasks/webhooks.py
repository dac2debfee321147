"""`webhook.deliver`: one signed POST of one job event to the job's webhook URL; a failure is tried
again on core.webhooks' schedule (a Redis sorted set the housekeeping releases), and every attempt
is an event on the job, so its page and API show what was delivered."""

from __future__ import annotations

import logging
import time
import urllib.error
import urllib.request

from celery import shared_task

from core import webhooks
from core.errors import AigcError, NotFound
from workers.runtime import get_runtime

log = logging.getLogger(__name__)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer, not a new destination: it could lead a webhook into a private network."""

    def redirect_request(self, *args, **kwargs):
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def post(url: str, body: str, headers: dict[str, str]) -> int:
    """POST the body; the answer's status (a 3xx included), or raise OSError when none came."""
    req = urllib.request.Request(url, data=body.encode(), method="POST",
                                 headers={"Content-Type": "application/json", "User-Agent": "aigc-webhooks",
                                          **headers})
    try:
        with _opener.open(req, timeout=webhooks.TIMEOUT_S) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


@shared_task(name=webhooks.DELIVER_TASK, ignore_result=True)
def deliver(job_id: str, event_type: str, event_id: str, attempt: int) -> str:
    rt = get_runtime()
    try:
        job = rt.store.get(job_id)
    except NotFound:
        return "job gone"
    secret = rt.redis.get(webhooks.secret_key(job["owner"]))
    if not job.get("webhook_url") or not secret:
        return "nothing to deliver"
    body = webhooks.payload(event_id, event_type, job)
    status, error = None, None
    try:
        webhooks.check_url(job["webhook_url"], rt.settings.webhook_allow_private)  # again: DNS may have moved
        status = post(job["webhook_url"], body, webhooks.signature_headers(secret, event_id, body))
    except AigcError as exc:
        error = exc.message
    except OSError as exc:  # refused, reset, timed out, unresolvable
        error = f"{type(exc).__name__}: {exc}"[:300]
    delivered = status is not None and 200 <= status < 300
    retry = not delivered and webhooks.schedule_retry(rt.redis, job_id, event_type, event_id, attempt, time.time())
    rt.store.add_event(job_id, "webhook", event=event_type, webhook_id=event_id, attempt=attempt, status=status,
                       error=error, delivered=delivered, retrying=retry)
    if not delivered:
        log.warning("job %s: webhook %s attempt %d failed (%s)%s", job_id, event_type, attempt,
                    error or f"HTTP {status}", "; will retry" if retry else "; giving up")
    return "delivered" if delivered else "failed"
