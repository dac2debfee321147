"""The `text.chat` task: the assistant's next turn of a conversation, served by the same loop as `text.generate` (tasks/serving.py)."""

from __future__ import annotations

from celery import shared_task

from tasks.serving import serve


@shared_task(name="text.chat", bind=True, max_retries=None)
def text_chat(self, job_id: str | None, batch_list: str | None = None) -> str:
    """As text.generate: chat and completion jobs of one model share its batch list and engine."""
    return serve(self, job_id, batch_list or "")
