"""The `text.generate` task: a prompt's `n` completions, served by the worker's continuous-batching loop (tasks/serving.py)."""

from __future__ import annotations

from celery import shared_task

from tasks.serving import serve


@shared_task(name="text.generate", bind=True, max_retries=None)
def text_generate(self, job_id: str | None, batch_list: str | None = None) -> str:
    """Serve `job_id` (a re-sent job, or the one whose submission woke a worker) and the text jobs
    waiting in its batch list, joining the model's running batch; with no job id, the list's jobs."""
    return serve(self, job_id, batch_list or "")
