"""The Celery app: JSON-only messages, late acks, queue routing in configuration, endless reconnects.

`celery -A workers.celery_app worker` builds it from the environment; the web process calls
`make_celery(settings)` and only ever sends tasks by name.
"""

from __future__ import annotations

from celery import Celery

from core.config import Settings
from core.job_kinds import task_modules, task_routes

QUEUES = ("inference", "training", "default")

# Routing lives in configuration, never at call sites, and is derived from the job-kind registry:
# GPU-bound work on its own queues.
TASK_ROUTES = task_routes()
TASK_MODULES = task_modules()


def make_celery(settings: Settings, worker: bool = False) -> Celery:
    transport = {
        # Above the longest task, or Redis hands a running task to a second worker.
        "visibility_timeout": settings.visibility_timeout_s,
        "health_check_interval": 10,
    }
    app = Celery("aigc", broker=settings.redis_url, include=TASK_MODULES if worker else [])
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        result_accept_content=["json"],
        # The job record is the source of truth; results stay out of Redis.
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_routes=TASK_ROUTES,
        task_default_queue="default",
        broker_transport_options=transport,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        broker_channel_error_retry=True,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        worker_concurrency=settings.worker_concurrency,
        worker_hijack_root_logger=False,
        # Flower lists every job as a task (workers/task_events.py covers jobs that ride in a batch).
        worker_send_task_events=settings.task_events,
        task_send_sent_event=False,
        broker_pool_limit=10,
    )
    return app


def __getattr__(name: str):
    """`celery -A workers.celery_app` looks up `app`: build it (and hook the worker signals)."""
    if name in ("app", "celery"):
        import workers.bootstrap  # noqa: F401  (connects worker signals)

        global app
        app = make_celery(Settings.from_env(), worker=True)
        return app
    raise AttributeError(name)
