"""Flower (or any Celery event consumer) sees every job as one task: a job that ran in a batchmate's
message, and so had no task of its own, gets task events under its job id, named "{kind} {job id}"
as the messages' own tasks are (workers/task_messages.py names them so)."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

_ENDED = {"succeeded": "task-succeeded", "failed": "task-failed", "canceled": "task-revoked"}


def task_name(kind: str, job_id: str | None) -> str:
    """What a job's task is called in Flower and the worker's log."""
    return f"{kind} {job_id}" if job_id else f"{kind} (the next jobs of a batch list)"


def _send(task, events: list[tuple[str, dict]]) -> None:
    hostname = getattr(task.request, "hostname", None)
    if not events or not hostname or not task.app.conf.worker_send_task_events:
        return
    try:
        with task.app.events.default_dispatcher(hostname=hostname) as dispatcher:
            for kind, fields in events:
                dispatcher.send(kind, **fields)
    except Exception:  # noqa: BLE001 -- a view for operators: never a reason for a job to fail
        log.warning("could not send task events for batched jobs", exc_info=True)


def batchmates_ended(task, ends: list[tuple[dict, str, float, float]]) -> None:
    """One event for each job claimed through another job's message, when its batch has ended:
    (job, terminal status, when it started (epoch s), seconds it ran). The event carries the task's
    name, arguments and start as well (Flower merges every field an event brings), so one publish
    a job is all it costs; such a job shows in Flower once its batch ends."""
    events = []
    for job, status, started, runtime in ends:
        fields = {"uuid": job["id"], "name": task_name(job["kind"], job["id"]), "args": repr([job["id"]]),
                  "kwargs": "{}", "retries": 0, "received": started, "started": started,
                  "parent_id": task.request.id, "root_id": task.request.id}
        if status == "succeeded":
            fields.update(result="'ran in a batch'", runtime=runtime)
        elif status == "failed":
            fields.update(exception="the job failed: see its error on the job", traceback="")
        else:
            fields.update(terminated=False, signum=None, expired=False)
        events.append((_ENDED[status], fields))
    _send(task, events)
