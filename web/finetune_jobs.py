"""What the fine-tuning API and the fine-tune pages share: an owner's fine-tune job, its pause and its resume."""

from __future__ import annotations

from core.errors import NotFound
from core.jobs import PAUSED, QUEUED, RUNNING
from web.deps import get_celery, get_store
from web.limits import check_open_jobs
from workers.task_messages import task_message

KIND = "text.finetune"


def finetune_job(job_id: str, owner: str, param: str = "fine_tuning_job_id") -> dict:
    """The owner's fine-tune job; 404 for another owner's job or a job of another kind."""
    job = get_store().get(job_id, owner)
    if job["kind"] != KIND:
        raise NotFound(f"No fine-tuning job {job_id!r}", param=param)
    return job


def pause(job: dict) -> dict:
    """Queued: paused at once. Running: the worker checkpoints at its next step, then pauses. Any
    other status: the job as it is."""
    if job["status"] in (QUEUED, RUNNING):
        return get_store().request_pause(job["id"])
    return job


def resume(job: dict) -> str:
    """Back to the queue from the last checkpoint (resumed), or a pause not yet taken withdrawn
    (unpaused); else the status that cannot be resumed."""
    if job["status"] == PAUSED:
        check_open_jobs(job["owner"])  # resumed, it counts as open again
    return get_store().resume(job["id"], task_message(get_celery(), KIND, [job["id"]]))
