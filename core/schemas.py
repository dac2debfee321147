"""Request shapes, declared once: text generation and fine-tuning inputs, campaign requests, the job envelope.

Validation, the defaults the forms show and the OpenAPI document are all derived from these
classes. Limits that depend on a setting (AIGC_MAX_NEW_TOKENS, ...) are checked against the
settings passed to `core.shapes.check`; the static bounds here are the hard ceilings.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, WithJsonSchema, model_validator

from core.catalog import context_tokens, kv_bytes_per_token, resolve_text_model
from core.errors import InvalidInput
from core.shapes import Lookups, NO_LOOKUPS, Shape, check, collect, context, refuse, reraise

__all__ = ["Lookups", "NO_LOOKUPS"]  # re-exported: callers build lookups next to the shapes

DEFAULT_MAX_NEW_TOKENS = 64


def _at_most(setting: str):
    """A bound read from the settings at validation time (the schema shows the hard ceiling)."""
    def check_bound(value, info):
        settings, _ = context(info)
        hi = getattr(settings, setting) if settings is not None else value
        if value > hi:
            raise refuse("invalid_input", f"must be <= {hi}", relative=True)
        return value
    return AfterValidator(check_bound)


def _text_model(value: str, info) -> str:
    settings, lookups = context(info)
    try:
        return resolve_text_model(value, settings, "", lookups.owns_model, lookups.published).id
    except InvalidInput as exc:
        raise reraise(exc) from None


def file_of(purpose: str):
    """A file id the caller uploaded with this purpose."""
    def check_file(value: str, info) -> str:
        _, lookups = context(info)
        record = lookups.file(value) if value else None
        if record is None:
            raise refuse("file_not_found", f"No file {value!r}: upload it with POST /v1/files")
        if record["purpose"] != purpose:
            raise refuse("invalid_input", f"File {value!r} has purpose {record['purpose']!r}, not {purpose!r}")
        return value
    return AfterValidator(check_file)


def _one_or_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


Seed = Annotated[int, Field(ge=0, le=2**32 - 1)]
TextModel = Annotated[str, Field(description="builtin:ad-writer (the default), builtin:tiny-gpt2, a directory under AIGC_MODELS_DIR, a cached "
                                             "Hugging Face id, or one of your ft: models"),
                      AfterValidator(_text_model)]
Prompt = Annotated[str, Field(min_length=1, max_length=1_000_000, description="at most AIGC_MAX_PROMPT_CHARS characters")]
_STOP_ITEM = {"type": "string", "minLength": 1, "maxLength": 64}
Stop = Annotated[list[Annotated[str, Field(min_length=1, max_length=64)]],
                 BeforeValidator(_one_or_list),
                 Field(max_length=4),
                 WithJsonSchema({"anyOf": [_STOP_ITEM, {"type": "array", "items": _STOP_ITEM, "maxItems": 4}],
                                 "description": "a string or up to 4; generation ends before any of them"})]
Choices = Annotated[int, Field(ge=1, le=128, description="completions per prompt, at most AIGC_MAX_CHOICES"),
                    _at_most("max_choices")]
NewTokens = Annotated[int, Field(ge=1, le=1_000_000, description="at most AIGC_MAX_NEW_TOKENS"),
                      _at_most("max_new_tokens")]
Temperature = Annotated[float, Field(ge=0, le=2, allow_inf_nan=False, description="0 means greedy decoding")]
TopP = Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]
TopK = Annotated[int, Field(ge=0, le=1000, description="0 disables top-k")]


def _prompt_fits(value: str, info) -> str:
    settings, _ = context(info)
    if settings is not None and len(value) > settings.max_prompt_chars:
        raise refuse("invalid_input", f"is longer than {settings.max_prompt_chars} characters", relative=True)
    return value


class Sampling(Shape):
    """How to sample: shared by text.generate and every row of a campaign."""

    max_new_tokens: NewTokens = DEFAULT_MAX_NEW_TOKENS
    temperature: Temperature = 1.0
    top_p: TopP = 1.0
    top_k: TopK = 0
    stop: Stop = []

    @model_validator(mode="after")
    def _default_fits_the_limit(self, info):
        # A server configured below the default still accepts a request that names no length.
        settings, _ = context(info)
        if "max_new_tokens" not in self.model_fields_set and settings is not None \
                and self.max_new_tokens is not None:
            self.max_new_tokens = min(self.max_new_tokens, settings.max_new_tokens)
        return self


def _check_window(model: str, new_tokens: int | None, info, field: str, prompt: str) -> None:
    """max_new_tokens below the model's context window (the prompt needs a token at least): refused
    at submission, not after the job waited in the queue."""
    settings, _ = context(info)
    if settings is None or new_tokens is None:
        return
    window = context_tokens(model, settings)
    if window and new_tokens >= window:
        raise refuse("invalid_input", f"must be less than {window}, the context window of {model} "
                                      f"({prompt} needs room too)", relative=True, field=field)


def _check_cache(shape: "Sampling", info) -> None:
    """A request whose sequences could never fit a worker's key/value cache (AIGC_KV_CACHE_BYTES),
    even with a one-token prompt: refused at submission, not after the job waited in the queue."""
    settings, _ = context(info)
    if settings is None or shape.max_new_tokens is None:
        return
    per_token = kv_bytes_per_token(shape.model, settings)
    rows = shape.n if shape.temperature > 0 else 1  # greedy choices are generated once
    if per_token and rows * (shape.max_new_tokens + 1) * per_token > settings.kv_cache_bytes:
        most = settings.kv_cache_bytes // (per_token * (shape.max_new_tokens + 1))
        raise refuse("invalid_input", f"must be at most {most}: {rows} sequences of {shape.max_new_tokens} "
                                          f"new tokens would need more key/value cache than a worker holds for "
                                          f"{shape.model} (AIGC_KV_CACHE_BYTES); lower n or max_new_tokens",
                     relative=True, field="n")


def _new_tokens_fit(shape: "Sampling", info):
    _check_window(shape.model, shape.max_new_tokens, info, "max_new_tokens", "the prompt")
    _check_cache(shape, info)
    return shape


class TextGenerateInput(Sampling):
    """input of a text.generate job."""

    model: TextModel
    prompt: Annotated[Prompt, AfterValidator(_prompt_fits)]
    n: Choices = 1
    seed: Seed | None = Field(None, description="same seed, same text")
    stream: bool = Field(False, description="relay the text as it is written (token deltas on the job's live "
                                            "stream)")

    _fits_the_model = model_validator(mode="after")(_new_tokens_fit)


class CampaignGeneration(Sampling):
    """`generation` of a campaign: one seed for the campaign, each row's derived from it."""

    seed: Seed = 0


DEFAULT_CHAT_MAX_NEW_TOKENS = 256  # a chat reply is longer than a completion's default


class ChatMessage(Shape):
    """One turn of a conversation, its content as plain text."""

    role: Literal["system", "user", "assistant"]
    content: Annotated[str, Field(max_length=1_000_000)]


def _conversation_fits(value: list, info) -> list:
    settings, _ = context(info)
    total = sum(len(m.content) for m in value)
    if settings is not None and total > settings.max_prompt_chars:
        raise refuse("invalid_input", f"hold {total} characters, over the limit of {settings.max_prompt_chars}",
                     relative=True)
    return value


class TextChatInput(Sampling):
    """input of a text.chat job: the conversation so far; the reply is the assistant's next turn.
    The worker renders it with the model's chat template (ChatML where it has none)."""

    model: TextModel
    messages: Annotated[list[ChatMessage], Field(min_length=1, max_length=512), AfterValidator(_conversation_fits)]
    max_new_tokens: NewTokens | None = Field(
        None, description=f"unset: as much as the model's context leaves, at most {DEFAULT_CHAT_MAX_NEW_TOKENS} "
                          "(and AIGC_MAX_NEW_TOKENS)")
    n: Choices = 1
    seed: Seed | None = Field(None, description="same seed, same reply")
    stream: bool = Field(False, description="relay the reply's text as it is written (token deltas on the "
                                            "job's live stream)")
    user: Annotated[str, Field(max_length=256)] | None = Field(None, description="the caller's end user, kept")

    _fits_the_model = model_validator(mode="after")(_new_tokens_fit)


_SUFFIX_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")


def _suffix(value: str) -> str:
    if not _SUFFIX_RE.match(value):
        raise refuse("invalid_input", "must be 1-40 lowercase letters, digits or '-'", relative=True)
    return value


class LoraSettings(Shape):
    """A LoRA adapter's shape (models/lora.py): only these low-rank matrices train and are stored."""

    enabled: bool = Field(True, description="false: train every weight instead (what `\"lora\": false` means)")
    r: Annotated[int, Field(ge=1, le=256, description="the adapter's rank")] = 8
    alpha: Annotated[float, Field(gt=0, le=4096, allow_inf_nan=False, description="scale: alpha / r")] = 16
    dropout: Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)] = 0.05
    target_modules: Annotated[list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.]{1,100}$")]],
                              Field(min_length=1, max_length=32)] | None = Field(
        None, description="module names to adapt; default: the model's attention projections")


def _lora_flag(value: Any) -> Any:
    # true / false are shorthands for the object: one type, so an error names the field itself
    # (a union would name the member it tried, "lora.LoraSettings.r").
    return {} if value is True else {"enabled": False} if value is False else value


LoraChoice = Annotated[LoraSettings | None, BeforeValidator(_lora_flag)]


class FinetuneHyperparameters(Shape):
    """How a text.finetune job trains; models.finetune.FinetuneConfig takes these values as they are
    (all but `lora`, which says what trains)."""

    epochs: Annotated[int, Field(ge=1, le=100)] = 3
    max_steps: Annotated[int, Field(ge=1, le=1_000_000)] | None = Field(None, description="overrides epochs when set")
    batch_size: Annotated[int, Field(ge=1, le=256)] = 8
    learning_rate: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] = 5e-4
    block_size: Annotated[int, Field(ge=8, le=4096)] = 128
    warmup_steps: Annotated[int, Field(ge=0, le=100_000)] = 10
    seed: Seed = 0
    eval_every: Annotated[int, Field(ge=1, le=100_000)] = 50
    checkpoint_every: Annotated[int, Field(ge=1, le=100_000)] = 100
    lora: LoraChoice = Field(
        None, description="train a LoRA adapter (an object of its settings, or true for the defaults) or, "
                          "with false, every weight; unset: an adapter for bases over 50M parameters")


class TextFinetuneInput(Shape):
    """input of a text.finetune job."""

    base_model: TextModel
    training_file: Annotated[str, file_of("fine-tune")]
    validation_file: Annotated[str, file_of("fine-tune")] | None = None
    suffix: Annotated[str, Field(json_schema_extra={"pattern": _SUFFIX_RE.pattern}), AfterValidator(_suffix)] = "custom"
    hyperparameters: FinetuneHyperparameters = Field(default_factory=FinetuneHyperparameters)


def _metadata(value: Any) -> Any:
    # Checked whole: the error names `metadata`, whichever entry is wrong.
    if not isinstance(value, dict) or len(value) > 16 or not all(
            isinstance(k, str) and len(k) <= 64 and isinstance(v, str) and len(v) <= 512
            for k, v in value.items()):
        raise refuse("invalid_input", "metadata must be an object of at most 16 string values")
    return value


Metadata = Annotated[dict[str, str], BeforeValidator(_metadata),
                     Field(description="up to 16 string values (keys up to 64, values up to 512 characters), "
                                       "returned as given")]


class CampaignCreate(Shape):
    """POST /v1/campaigns: the rows (a campaign file or inline) are checked against the template
    by core.campaigns; this is the request's shape."""

    input_file: Annotated[str, file_of("campaign")] | None = None
    rows: list[dict[str, Any]] | None = Field(None, description="inline rows instead of input_file")
    template: Annotated[str, Field(min_length=1, max_length=8000)]
    model: TextModel
    # validate_default: an absent `generation` is checked against the settings like a given one.
    generation: CampaignGeneration = Field(default_factory=dict, validate_default=True)
    n: Choices = 1
    id_column: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    metadata: Metadata = {}

    @model_validator(mode="after")
    def _one_source(self):
        if (self.input_file is None) == (self.rows is None):
            raise refuse("invalid_input", "Give exactly one of input_file and rows")
        return self

    @model_validator(mode="after")
    def _rows_fit_the_model(self, info):
        _check_window(self.model, self.generation.max_new_tokens, info, "generation.max_new_tokens",
                      "each row's prompt")
        return self


class JobCreate(Shape):
    """POST /v1/jobs: {"kind", "input", "metadata"?}; `input` is the kind's own shape."""

    kind: str = Field(description="a job kind: see JobKinds in this document")
    input: dict[str, Any]
    metadata: Metadata = {}
    webhook_url: Annotated[str, Field(min_length=1, max_length=2048)] | None = Field(
        None, description="POSTed each event of the job (job.started, job.progress, job.succeeded|failed|canceled), "
                          "signed with your secret (POST /v1/webhooks/secret)")


class WebhookDefault(Shape):
    """PUT /v1/webhooks/default: where every job of yours that names no webhook_url posts its events."""

    url: Annotated[str, Field(min_length=1, max_length=2048)]


def campaign_create(body: Any, settings, lookups: Lookups = NO_LOOKUPS) -> dict:
    return check(CampaignCreate, body, "", settings, lookups)


class BatchRequestSampling(CampaignGeneration):
    """One line of an OpenAI batch file: a campaign row's sampling settings plus its own n."""

    n: Choices = 1


def text_generate_input(data: Any, settings, lookups: Lookups = NO_LOOKUPS) -> dict:
    return check(TextGenerateInput, data, "input", settings, lookups)


def generation_params(data: Any, settings, param: str) -> dict:
    """Sampling settings shared by every row of a campaign or batch (a seed of 0 unless given)."""
    return check(CampaignGeneration, {} if data is None else data, param, settings)


def job_create(body: Any, settings, lookups: Lookups = NO_LOOKUPS) -> dict:
    """Validate a POST /v1/jobs body; every problem of the envelope and of the input at once."""
    from core.job_kinds import submittable

    kinds = submittable()
    if not isinstance(body, dict):
        raise InvalidInput("The request body must be a JSON object", param=None)

    def envelope():
        clean = check(JobCreate, body, "", settings, lookups)
        if clean["kind"] not in kinds:
            raise InvalidInput(f"kind must be one of {sorted(kinds)}", param="kind")
        return clean

    def kind_input():
        kind = body.get("kind")
        if isinstance(kind, str) and kind in kinds and "input" in body:
            return check(kinds[kind].input, body["input"], "input", settings, lookups)
        return None

    clean, inp = collect(envelope, kind_input)
    return {"kind": clean["kind"], "input": inp, "metadata": clean["metadata"], "webhook_url": clean["webhook_url"]}
