"""Celery task messages as kombu's Redis transport stores them, for pushing inside a Redis script.

Writing a job's record and its task message in one Lua script makes submission atomic (no job
without its message, no message without its job) and costs one round trip instead of the two
plus kombu's per-publish client set-up that `send_task` pays: about 2 ms of every POST /v1/jobs.
Celery builds the headers and body (`as_task_v2`), so the worker reads these messages exactly as
its own; tests/unit/test_task_messages.py compares them field by field with `send_task`'s.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass

from celery import Celery

from workers.celery_app import TASK_ROUTES
from workers.task_events import task_name


@dataclass(frozen=True)
class TaskMessage:
    """One message ready to LPUSH: the Redis list is the queue's name (priority 0)."""

    queue: str
    payload: str


def task_message(app: Celery, name: str, args: list) -> TaskMessage:
    """The message `app.send_task(name, args=args)` would publish, routed by the app's TASK_ROUTES."""
    queue = TASK_ROUTES.get(name, {}).get("queue", app.conf.task_default_queue)
    task_id = str(uuid.uuid4())
    # Shown as the task's name in Flower and the worker's log: which job the message carries.
    shadow = task_name(name, args[0] if args and isinstance(args[0], str) else None)
    msg = app.amqp.as_task_v2(task_id, name, args=args, kwargs={}, shadow=shadow)
    body = json.dumps(msg.body)
    envelope = {
        "body": base64.b64encode(body.encode()).decode(),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": msg.headers,
        "properties": {
            **msg.properties,
            "delivery_mode": 2,  # persistent
            # Celery publishes through the default exchange with the queue's name as routing key.
            "delivery_info": {"exchange": "", "routing_key": queue},
            "priority": 0,
            "body_encoding": "base64",
            "delivery_tag": str(uuid.uuid4()),
        },
    }
    return TaskMessage(queue, json.dumps(envelope))
