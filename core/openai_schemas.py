"""OpenAI's request shapes, declared once: /v1/completions and /v1/chat/completions bodies, what each maps to in a job's input, and the parameters the platform refuses.

A parameter the platform cannot honour is a 400 naming it, never silently dropped: each such
field is declared with the values that mean "not asked for" (false, 0, null, {"type": "text"}),
and any other value is refused.
"""

from __future__ import annotations

from typing import Annotated, Any, Callable, Literal

from pydantic import AfterValidator, Field, ValidationInfo, field_validator

from core.schemas import Metadata, Prompt, Stop
from core.shapes import Shape, refuse


def _refused(reason: str, harmless: Callable[[Any], bool] = lambda v: v is None):
    """A field the platform does not implement: accepted only with a value that asks for nothing."""
    def check(value):
        if not harmless(value):
            raise refuse("unsupported_parameter", f"is not supported: {reason}", relative=True)
        return value
    return AfterValidator(check)


def _empty(value) -> bool:
    return value in (None, False, 0, 0.0, {}, [])


Refused = Annotated[Any, _refused("this platform generates text only", _empty)]


class StreamOptions(Shape):
    include_usage: bool = False


class _OpenAISampling(Shape):
    """The sampling fields both routes share, under OpenAI's names."""

    model: Annotated[str, Field(min_length=1)]
    temperature: Annotated[float, Field(ge=0, le=2, allow_inf_nan=False)] | None = None
    top_p: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] | None = None
    n: Annotated[int, Field(ge=1, le=128)] | None = None
    stop: Stop | None = None
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: Annotated[str, Field(max_length=256)] | None = None
    # Asked for nothing unless set to something else: these are 400s naming the field.
    logprobs: Annotated[Any, _refused("log probabilities are not returned", _empty)] = None
    top_logprobs: Annotated[Any, _refused("log probabilities are not returned", _empty)] = None
    logit_bias: Annotated[Any, _refused("logit bias is not applied", _empty)] = None
    presence_penalty: Annotated[Any, _refused("penalties are not applied", _empty)] = None
    frequency_penalty: Annotated[Any, _refused("penalties are not applied", _empty)] = None
    service_tier: Annotated[Any, _refused("there is one tier", lambda v: v in (None, "auto", "default"))] = None

    @field_validator("stream_options")
    @classmethod
    def _options_need_a_stream(cls, value, info: ValidationInfo):
        if value is not None and not info.data.get("stream"):
            raise refuse("invalid_input", "is only allowed when stream is true", relative=True)
        return value

    def sampling(self, max_new_tokens: int | None) -> dict:
        """The job input's sampling fields (unset ones take the job shape's defaults)."""
        out = {"temperature": self.temperature, "top_p": self.top_p, "n": self.n, "stop": self.stop,
               "seed": self.seed, "max_new_tokens": max_new_tokens, "stream": self.stream}
        return {k: v for k, v in out.items() if v is not None}


class CompletionRequest(_OpenAISampling):
    """POST /v1/completions."""

    prompt: Prompt | Annotated[list[Prompt], Field(min_length=1, max_length=1)]
    max_tokens: Annotated[int, Field(ge=1)] | None = Field(16, description="OpenAI's default: 16")
    # For completions logprobs is a count, and 0 still asks for the sampled tokens' log probabilities.
    logprobs: Annotated[Any, _refused("log probabilities are not returned", lambda v: v is None)] = None
    echo: Annotated[Any, _refused("the prompt is not echoed", _empty)] = None
    best_of: Annotated[Any, _refused("best_of is not implemented", lambda v: v in (None, 1))] = None
    suffix: Annotated[Any, _refused("insertion is not implemented", lambda v: v in (None, ""))] = None

    def job_input(self) -> dict:
        prompt = self.prompt[0] if isinstance(self.prompt, list) else self.prompt
        return {"model": self.model, "prompt": prompt, **self.sampling(self.max_tokens)}


class TextPart(Shape):
    type: Literal["text"]
    text: str


class OpenAIChatMessage(Shape):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | Annotated[list[TextPart], Field(min_length=1)]
    name: Annotated[Any, _refused("named participants are not rendered", _empty)] = None

    def plain(self) -> dict:
        """{role, content} with text parts joined and `developer` as `system` (OpenAI's own reading)."""
        content = self.content if isinstance(self.content, str) else "".join(p.text for p in self.content)
        return {"role": "system" if self.role == "developer" else self.role, "content": content}


def _text_format(value) -> bool:
    return value is None or value == {"type": "text"}


class ChatCompletionRequest(_OpenAISampling):
    """POST /v1/chat/completions."""

    messages: Annotated[list[OpenAIChatMessage], Field(min_length=1, max_length=512)]
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    max_completion_tokens: Annotated[int, Field(ge=1)] | None = None
    metadata: Metadata | None = None
    store: Annotated[Any, _refused("completions are kept as jobs; store is not needed", _empty)] = None
    tools: Annotated[Any, _refused("tool calling is not implemented", _empty)] = None
    tool_choice: Annotated[Any, _refused("tool calling is not implemented", lambda v: v in (None, "none"))] = None
    parallel_tool_calls: Annotated[Any, _refused("tool calling is not implemented", _empty)] = None
    functions: Annotated[Any, _refused("function calling is not implemented", _empty)] = None
    function_call: Annotated[Any, _refused("function calling is not implemented",
                                           lambda v: v in (None, "none"))] = None
    response_format: Annotated[Any, _refused("only text is returned", _text_format)] = None
    modalities: Annotated[Any, _refused("only text is returned", lambda v: v in (None, ["text"]))] = None
    audio: Refused = None
    prediction: Annotated[Any, _refused("predicted outputs are not used", _empty)] = None
    reasoning_effort: Annotated[Any, _refused("the models here do not reason apart", _empty)] = None
    web_search_options: Annotated[Any, _refused("there is no web search", _empty)] = None

    @field_validator("max_completion_tokens")
    @classmethod
    def _one_length(cls, value, info: ValidationInfo):
        older = info.data.get("max_tokens")
        if value is not None and older is not None and older != value:
            raise refuse("invalid_input", f"and max_tokens ({older}) disagree; send one of them", relative=True)
        return value

    def job_input(self) -> dict:
        # max_completion_tokens is OpenAI's current name; max_tokens the older one.
        # Unset: the worker gives the reply what the context leaves (text.chat's default).
        wanted = self.max_completion_tokens or self.max_tokens
        inp = {"model": self.model, "messages": [m.plain() for m in self.messages], **self.sampling(wanted)}
        if self.user is not None:
            inp["user"] = self.user
        return inp

