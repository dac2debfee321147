"""How each text kind reads its prompt and writes its answer (text.generate, text.chat), and the output a finished request leaves on its job."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from typing import Callable

from core.errors import InvalidInput, JobCanceled, LeaseLost
from core.schemas import DEFAULT_CHAT_MAX_NEW_TOKENS
from core.text_checks import encodable, unencodable_message
from models.chat import chat_prompt, chat_stops
from models.text import GenerationParams, PromptTooLong, TextModel
from tasks.runner import TRANSIENT, JobContext, Outcome
from workers.runtime import get_runtime

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reply:
    """How a generation kind reads its prompt and writes its answer."""

    # (model, input) -> the text the model continues
    prompt: Callable[[TextModel, dict], str] = lambda _model, inp: inp["prompt"]
    # (model) -> stop strings the kind adds to the caller's (a chat template's end of turn)
    stops: Callable[[TextModel], tuple[str, ...]] = lambda _model: ()
    # a generated choice {index, text, finish_reason} -> the choice in the job's output
    choice: Callable[[dict], dict] = lambda c: c
    # a prompt too long for the model -> the job's error
    too_long: Callable[[PromptTooLong], InvalidInput] = (
        lambda exc: InvalidInput(str(exc), param="input.prompt", code="prompt_too_long"))
    input_param: str = "input.prompt"  # what an error about the prompt names


def _chat_too_long(exc: PromptTooLong) -> InvalidInput:
    # OpenAI's code for it, with the numbers a caller needs to trim the conversation.
    return InvalidInput(
        f"The conversation is {exc.prompt_tokens} tokens and max_tokens asks for {exc.max_new_tokens} more; "
        f"this model's context holds {exc.context} tokens in all. Shorten the messages or lower max_tokens.",
        param="input.messages", code="context_length_exceeded")


PLAIN = Reply()
CHAT = Reply(
    prompt=lambda model, inp: chat_prompt(model.tokenizer, inp["messages"]),
    stops=lambda model: chat_stops(model.tokenizer),
    choice=lambda c: {"index": c["index"], "message": {"role": "assistant", "content": c["text"]},
                      "finish_reason": c["finish_reason"]},
    too_long=_chat_too_long,
    input_param="input.messages",
)
REPLIES = {"text.generate": PLAIN, "text.chat": CHAT}


def job_prompt(ctx: JobContext, model: TextModel, reply: Reply) -> str:
    """The job's prompt; InvalidInput where the model cannot take its input (a chat template that
    refuses its roles, say), with the template's own words."""
    try:
        prompt = reply.prompt(model, ctx.job["input"])
    except Exception as exc:  # a model's template raises what it likes (jinja's TemplateError, ...)
        raise InvalidInput(f"The model cannot take this input: {exc}", param=reply.input_param) from exc
    # The API refuses such text at the door; a job that got in some other way (queued before that
    # check, or written by hand) still fails alone rather than in the tokenizer.
    if not encodable(prompt):
        raise InvalidInput(unencodable_message(reply.input_param), param=reply.input_param)
    return prompt


def job_params(inp: dict, model: TextModel, prompt_tokens: int, reply: Reply) -> GenerationParams:
    """A job's sampling settings, with the kind's stop strings; no max_new_tokens (text.chat leaves
    the length to us): what the context leaves after the prompt, at most DEFAULT_CHAT_MAX_NEW_TOKENS
    and AIGC_MAX_NEW_TOKENS (a long chat keeps working, with shorter replies, until the conversation
    itself fills the context)."""
    if inp["max_new_tokens"] is None:
        cap = min(DEFAULT_CHAT_MAX_NEW_TOKENS, get_runtime().settings.max_new_tokens)
        inp = {**inp, "max_new_tokens": max(1, min(cap, model.max_positions - prompt_tokens))}
    params = GenerationParams.from_input(inp)
    return replace(params, stop=params.stop + reply.stops(model))


def publish_output(ctx: JobContext, result: dict, seed: int, params: GenerationParams, reply: Reply) -> Outcome:
    """Store a finished request's output.json; the output (or why this job has none) for its terminal write."""
    output = {
        "model": ctx.job["input"]["model"],
        "choices": [reply.choice(c) for c in result["choices"]],
        "usage": {"prompt_tokens": result["prompt_tokens"], "completion_tokens": result["completion_tokens"]},
        "seed": seed,
    }
    try:
        ctx.put_artifact("output.json", json.dumps(output, ensure_ascii=False, indent=2).encode(),
                         "application/json")
    except TRANSIENT:
        raise  # Redis or the store blinked: the serving loop hands its jobs back
    except Exception as exc:  # canceled, lost, or this job's write failed: this job only
        if not isinstance(exc, (JobCanceled, LeaseLost)):
            log.exception("job %s: could not store its output", ctx.id)
        return exc
    ctx.finish_progress(params.max_new_tokens, "tokens")
    return output
