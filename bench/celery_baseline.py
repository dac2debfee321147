"""A bare Celery app with one trivial task: the queue-overhead baseline (`celery -A bench.celery_baseline worker`)."""

from __future__ import annotations

import os
import time

from celery import Celery

QUEUE = "bench-baseline"


def make_app(redis_url: str) -> Celery:
    """The same broker and delivery guarantees as the platform's app (workers/celery_app.py): JSON, late
    acks, one message prefetched per process. Results go to Redis, so that `get()` works."""
    app = Celery("bench_baseline", broker=redis_url, backend=redis_url)
    app.conf.update(
        task_serializer="json", accept_content=["json"], result_serializer="json",
        task_acks_late=True, task_reject_on_worker_lost=True, worker_prefetch_multiplier=1,
        task_default_queue=QUEUE, result_expires=3600, worker_hijack_root_logger=False,
        worker_send_task_events=False, task_send_sent_event=False,
    )
    return app


# The worker's app; bench/queue_overhead.py starts it with BENCH_REDIS_URL set to the platform's Redis.
app = make_app(os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"))


@app.task(name="bench.noop")
def noop(i: int) -> float:
    """Nothing but the round trip; returns when it ran (wall clock, like a job's finished_at)."""
    return time.time()
