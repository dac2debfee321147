"""Give back the messages a dead worker had taken, instead of waiting for kombu's visibility timeout.

Kombu's Redis transport keeps each delivered, unacknowledged message in the `unacked` hash (its
delivery time in `unacked_index`) and puts it back only after the visibility timeout, which must
outlast the longest task (hours). A worker killed with SIGKILL leaves there every message it had
taken: a job it had not claimed yet stays queued all that time. So each worker lists, with its
heartbeat, the delivery tags it still holds; a tag that no live worker holds (its worker's
heartbeat stopped, or a Redis restart cancelled the task it carried) goes back to its queue.
A message given back while some worker still runs it is a duplicate, which the job's lease and
terminal status turn into a no-op.
"""

from __future__ import annotations

import json
import threading
import weakref

from core.redisdb import WORKER_PREFIX

UNACKED_INDEX = "unacked_index"  # kombu's names (Channel.unacked_index_key), with no key prefix set


class HeldMessages:
    """The delivery tags this worker process took and has not acknowledged (fed by task_received)."""

    def __init__(self):
        self._lock = threading.Lock()
        # Weak: a request Celery dropped (its connection was lost) stops counting as held.
        self._requests: weakref.WeakValueDictionary = weakref.WeakValueDictionary()

    def add(self, request) -> None:
        tag = getattr(getattr(request, "message", None), "delivery_tag", None)
        if tag is not None:
            with self._lock:
                self._requests[str(tag)] = request

    def tags(self) -> list[str]:
        """Tags still held: not acknowledged, not cancelled (after a connection loss), channel open."""
        with self._lock:
            items = list(self._requests.items())
        held = []
        for tag, request in items:
            channel = getattr(request.message, "channel", None)
            if (request.acknowledged or getattr(request, "_already_cancelled", False)
                    or getattr(channel, "closed", False)):
                with self._lock:
                    self._requests.pop(tag, None)
                continue
            held.append(tag)
        return held


def orphaned_tags(r, now: float, grace_s: float) -> list[str]:
    """Tags delivered more than `grace_s` ago (so the taker has announced them since) that no live
    worker's heartbeat lists. `now` is the caller's clock, in kombu's seconds since the epoch."""
    taken = r.zrangebyscore(UNACKED_INDEX, 0, now - grace_s)
    if not taken:
        return []
    held: set[str] = set()
    for key in r.scan_iter(WORKER_PREFIX + "*", count=100):
        info = r.get(key)
        if info:
            held.update(json.loads(info).get("held", []))
    return [tag for tag in taken if tag not in held]


def restore(app, tags: list[str]) -> None:
    """Put each message back at the head of its queue with kombu's own restore (one transaction per
    tag, watched: a message acknowledged meanwhile, or restored by another worker, is left alone)."""
    with app.connection_for_write() as conn:
        qos = conn.default_channel.qos
        for tag in tags:
            qos.restore_by_tag(tag, leftmost=True)
