"""What Flower shows: every job is one task named "{kind} {job id}", the jobs that ran in a
batchmate's message included (each gets one event under its job id when its batch ends)."""

from __future__ import annotations

import threading

from core.config import Settings
from tests.harness import wait_for
from workers.celery_app import make_celery


def test_every_job_of_a_batch_is_a_task_in_the_event_stream(make_platform):
    p = make_platform("task-events")
    p.start_web()
    api = p.api(p.create_key("flower-watcher"))
    # Queued with no worker: the three share a batch, so two of them have no message of their own.
    jobs = [api.submit({"model": "builtin:tiny-gpt2", "prompt": f"Row {i}", "max_new_tokens": 2, "seed": i})
            for i in range(3)]

    app = make_celery(Settings(**{"AIGC_REDIS_URL": p.redis.url}))
    seen: list[dict] = []
    with app.connection() as conn:
        receiver = app.events.Receiver(conn, handlers={"*": seen.append})
        listening = threading.Thread(target=lambda: receiver.capture(limit=None, timeout=60, wakeup=False),
                                     daemon=True)
        listening.start()
        try:
            p.start_worker()
            for job in jobs:
                assert api.wait(job["id"], timeout_s=60)["status"] == "succeeded"

            def each_job_has_a_task_that_ended():
                # A message's task is named when received; a batchmate's one event names it.
                names = {e["uuid"]: e["name"] for e in seen if e["type"].startswith("task-") and e.get("name")}
                ended = {e["uuid"] for e in seen if e["type"] == "task-succeeded"}
                named = {name.split(" ", 1)[1]: uuid for uuid, name in names.items() if name and " " in name}
                return all(job["id"] in named and named[job["id"]] in ended for job in jobs)
            wait_for(each_job_has_a_task_that_ended, 30, "a task per job, received and succeeded")
        finally:
            receiver.should_stop = True
            listening.join(timeout=70)
    riders = {e["uuid"] for e in seen if e["type"] == "task-succeeded" and e["uuid"] in {j["id"] for j in jobs}}
    assert len(riders) == 2  # the batchmates: an event under their job ids; the lead is its message's task
    assert all(e["name"].startswith("text.generate job_") for e in seen if e.get("name"))
