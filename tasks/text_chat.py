"""The `text.chat` task: the assistant's next turn of a conversation, on the same batched generation as `text.generate`."""

from __future__ import annotations

from celery import shared_task

from core.errors import InvalidInput
from models.chat import chat_prompt, chat_stops
from models.text import PromptTooLong
from tasks.runner import run_batch
from tasks.text_generate import Reply, generate_many
from workers.runtime import get_runtime


def _too_long(exc: PromptTooLong) -> InvalidInput:
    # OpenAI's code for it, with the numbers a caller needs to trim the conversation.
    return InvalidInput(
        f"The conversation is {exc.prompt_tokens} tokens and max_tokens asks for {exc.max_new_tokens} more; "
        f"this model's context holds {exc.context} tokens in all. Shorten the messages or lower max_tokens.",
        param="input.messages", code="context_length_exceeded")


CHAT = Reply(
    prompt=lambda model, inp: chat_prompt(model.tokenizer, inp["messages"]),
    stops=lambda model: chat_stops(model.tokenizer),
    choice=lambda c: {"index": c["index"], "message": {"role": "assistant", "content": c["text"]},
                      "finish_reason": c["finish_reason"]},
    too_long=_too_long,
    input_param="input.messages",
)


@shared_task(name="text.chat", bind=True, max_retries=None)
def text_chat(self, job_id: str | None, batch_list: str | None = None) -> str:
    """As text.generate: `job_id` and the chat jobs waiting in its batch list, in one call."""
    limit = get_runtime().settings.generate_batch_jobs
    return run_batch(self, job_id, batch_list or "", lambda ctxs: generate_many(ctxs, CHAT), limit)
