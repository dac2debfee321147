"""Messages a dead worker had taken go back to their queue; those a live worker holds stay with it."""

from __future__ import annotations

import json
import time

from core.redisdb import WORKER_PREFIX
from workers.celery_app import make_celery
from workers.orphans import HeldMessages, orphaned_tags, restore


class Request:
    """What HeldMessages reads of a Celery request: its message's tag and channel, and its state."""

    class Message:
        def __init__(self, tag):
            self.delivery_tag, self.channel = tag, None

    def __init__(self, tag):
        self.message, self.acknowledged = Request.Message(tag), False


def test_held_messages_drop_acknowledged_and_cancelled_requests():
    held = HeldMessages()
    a, b, c = Request("a"), Request("b"), Request("c")
    for request in (a, b, c):
        held.add(request)
    b.acknowledged = True
    c._already_cancelled = True  # Celery cancelled it when the broker connection was lost
    assert held.tags() == ["a"]
    del a  # Celery dropped the request: it is no longer held by anyone
    assert held.tags() == []


def test_a_message_no_live_worker_holds_goes_back_to_its_queue(make_settings, redis_server, redis_client):
    app = make_celery(make_settings(AIGC_REDIS_URL=redis_server.url))
    app.send_task("text.generate", args=["job_1"])
    with app.connection_for_read() as conn:
        queue = conn.SimpleQueue("inference", no_ack=False)  # a worker takes it and then dies
        message = queue.get(timeout=5)
        tag = message.delivery_tag
        assert redis_client.llen("inference") == 0 and redis_client.hexists("unacked", tag)

        later = time.time() + 60
        assert orphaned_tags(redis_client, time.time(), grace_s=30) == []  # just delivered: not yet
        # A live worker that lists the tag holds it.
        redis_client.set(f"{WORKER_PREFIX}host:1", json.dumps({"held": [tag]}), ex=30)
        assert orphaned_tags(redis_client, later, grace_s=30) == []
        # Its heartbeat stopped: nobody holds it.
        redis_client.delete(f"{WORKER_PREFIX}host:1")
        assert orphaned_tags(redis_client, later, grace_s=30) == [tag]

        restore(app, [tag])
        restore(app, [tag])  # a second worker restoring the same orphan finds nothing to do
        assert redis_client.llen("inference") == 1 and not redis_client.hexists("unacked", tag)
        again = queue.get(timeout=5)
        assert again.payload == message.payload and again.headers["redelivered"] is True
        again.ack()
        queue.close()
    assert redis_client.llen("inference") == 0 and redis_client.hlen("unacked") == 0
