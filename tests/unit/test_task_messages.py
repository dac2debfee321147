"""Task messages pushed by a Redis script are the messages Celery's own send_task publishes."""

from __future__ import annotations

import base64
import json

import pytest
from celery import Celery

from core.config import Settings
from workers.celery_app import make_celery
from workers.task_messages import task_message


@pytest.fixture
def app(redis_server, tmp_path) -> Celery:
    app = make_celery(Settings.from_env({"AIGC_REDIS_URL": redis_server.url, "AIGC_DATA_DIR": str(tmp_path)}))
    yield app
    app.close()


def test_a_built_message_matches_send_task_field_by_field(app, redis_client):
    app.send_task("text.generate", args=["job_1", "batch-key"], shadow="text.generate job_1")
    [sent] = [json.loads(m) for m in redis_client.lrange("inference", 0, -1)]
    built = task_message(app, "text.generate", ["job_1", "batch-key"])
    ours = json.loads(built.payload)
    assert built.queue == "inference"
    assert base64.b64decode(ours["body"]) == base64.b64decode(sent["body"])
    assert ours.keys() == sent.keys()
    assert ours["headers"].keys() == sent["headers"].keys()
    per_message = {"id", "root_id", "ignore_result"}  # ignore_result: False here, None from send_task
    assert {k: v for k, v in ours["headers"].items() if k not in per_message} == \
        {k: v for k, v in sent["headers"].items() if k not in per_message}
    assert ours["headers"]["id"] == ours["headers"]["root_id"] == ours["properties"]["correlation_id"]
    props = {k: v for k, v in ours["properties"].items() if k not in ("correlation_id", "delivery_tag", "reply_to")}
    assert props == {k: v for k, v in sent["properties"].items()
                     if k not in ("correlation_id", "delivery_tag", "reply_to")}


def test_unrouted_tasks_go_to_the_default_queue(app):
    assert task_message(app, "some.task", []).queue == "default"
    a, b = (json.loads(task_message(app, "text.generate", ["x"]).payload) for _ in range(2))
    assert a["headers"]["id"] != b["headers"]["id"]  # a fresh task id per message
