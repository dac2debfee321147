"""Response shapes, declared once: what every route answers, for the generated OpenAPI document and the test that holds responses to it."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from core.jobs import STATUSES

Status = Literal[STATUSES]  # type: ignore[valid-type]


class Answer(BaseModel):
    """A response body: every declared field is present with its type; more may follow."""

    model_config = ConfigDict(extra="allow")


class ErrorDetail(Answer):
    code: str
    message: str
    type: str = Field(description="OpenAI's: invalid_request_error, authentication_error, permission_error, "
                                  "rate_limit_error or server_error")
    param: str | None = Field(description="the offending field, e.g. input.max_new_tokens")
    errors: list[dict[str, Any]] | None = Field(
        None, description="every problem found, each {param, message, code}; the first is code/message/param")


class Error(Answer):
    error: ErrorDetail


class Progress(Answer):
    completed: int
    total: int | None
    unit: str | None
    eta_s: float | None


class Artifact(Answer):
    name: str
    bytes: int
    content_type: str
    url: str


class Checkpoint(Answer):
    step: int


class Job(Answer):
    object: Literal["job"]
    id: str
    kind: str
    status: Status
    input: dict[str, Any]
    output: dict[str, Any] | None
    error: dict[str, Any] | None
    progress: Progress | None
    checkpoint: Checkpoint | None = Field(description="the last committed checkpoint")
    artifacts: list[Artifact]
    metadata: dict[str, str] | None
    attempts: int
    cancel_requested: bool
    created_at: str = Field(json_schema_extra={"format": "date-time"})
    started_at: str | None = Field(json_schema_extra={"format": "date-time"})
    finished_at: str | None = Field(json_schema_extra={"format": "date-time"})
    webhook_url: str | None = Field(None, description="where the job's events are posted, signed (Standard Webhooks)")
    queue_position: int | None = Field(None, description="while queued: 1 is the next job its queue's workers "
                                                         "take (by submission time, every owner's); else null")


class WebhookSecret(Answer):
    object: Literal["webhook.secret"]
    secret: str = Field(description="whsec_ and base64: verify each delivery with it (Standard Webhooks)")
    created_at: int


class WebhookDefaultUrl(Answer):
    object: Literal["webhook.default"]
    url: str | None = Field(description="where jobs that name no webhook_url post their events; null: nowhere")


class JobList(Answer):
    object: Literal["list"]
    data: list[Job]
    has_more: bool
    next_cursor: str | None


class Event(Answer):
    """One entry of a job's log. A "status" event with status "running" also says where the attempt
    runs: `worker` (its Celery host name), `device` ("cuda" or "cpu"), `precision` ("bf16" or
    "fp32") and on a GPU `accelerator` (its name); campaign chunk events name their worker too."""

    seq: int
    type: str


class EventList(Answer):
    object: Literal["list"]
    data: list[Event]
    next_after: int


class ImageModelInfo(Answer):
    architecture: Literal["dcgan", "vae"]
    conditional: bool
    classes: list[str] = Field(description="a conditional model's classes, in index order")
    image_size: int
    channels: int


class Model(Answer):
    id: str
    object: Literal["model"]
    created: int = Field(description="unix seconds (0 for models that ship with the platform)")
    owned_by: str
    kind: Literal["text", "gan"] = Field(description="gan: an image model (a gan: DCGAN or a vae: VAE)")
    source: str
    image: ImageModelInfo | None = Field(None, description="image models trained since classes were recorded")


class ModelList(Answer):
    object: Literal["list"]
    data: list[Model]


class Deleted(Answer):
    id: str
    object: str
    deleted: Literal[True]


class File(Answer):
    object: Literal["file"]
    id: str
    filename: str
    bytes: int
    purpose: str
    created_at: int = Field(description="unix seconds, as OpenAI's")
    status: Literal["processed"]
    status_details: None


class FileList(Answer):
    object: Literal["list"]
    data: list[File]
    has_more: bool
    first_id: str | None
    last_id: str | None


class RequestCounts(Answer):
    total: int
    completed: int
    failed: int


class Campaign(Answer):
    id: str
    object: Literal["campaign"]
    status: Status
    model: str
    template: str
    n: int
    request_counts: RequestCounts
    progress: Progress | None
    output: dict[str, Any] | None
    error: dict[str, Any] | None
    artifacts: list[Artifact]
    cancel_requested: bool
    created_at: str


class CampaignList(Answer):
    object: Literal["list"]
    data: list[Campaign]
    has_more: bool
    next_cursor: str | None


class CompletionChoice(Answer):
    text: str
    index: int
    logprobs: None
    finish_reason: Literal["stop", "length"]


class Usage(Answer):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class Completion(Answer):
    id: str
    object: Literal["text_completion"]
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage


class ChatMessageOut(Answer):
    role: Literal["assistant"]
    content: str


class ChatChoice(Answer):
    index: int
    message: ChatMessageOut
    finish_reason: Literal["stop", "length"]
    logprobs: None


class ChatCompletion(Answer):
    id: str = Field(description="chatcmpl-{job id}")
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage


class ChatDelta(Answer):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChatChunkChoice(Answer):
    index: int
    delta: ChatDelta
    finish_reason: Literal["stop", "length"] | None
    logprobs: None


class ChatCompletionChunk(Answer):
    """One `data:` event of a streamed chat completion (text/event-stream), ending with `data: [DONE]`."""

    id: str
    object: Literal["chat.completion.chunk"]
    created: int
    model: str
    choices: list[ChatChunkChoice]
    usage: Usage | None = Field(None, description="only in the last chunk, with stream_options.include_usage")


class CompletionChunkChoice(Answer):
    text: str
    index: int
    logprobs: None
    finish_reason: Literal["stop", "length"] | None


class CompletionChunk(Answer):
    """One `data:` event of a streamed completion (text/event-stream), ending with `data: [DONE]`."""

    id: str
    object: Literal["text_completion"]
    created: int
    model: str
    choices: list[CompletionChunkChoice]
    usage: Usage | None = None


class Batch(Answer):
    id: str
    object: Literal["batch"]
    endpoint: str
    input_file_id: str
    completion_window: str
    status: Literal["validating", "in_progress", "cancelling", "completed", "failed", "cancelled"]
    output_file_id: str | None
    error_file_id: str | None
    created_at: int
    in_progress_at: int | None
    expires_at: int
    completed_at: int | None
    failed_at: int | None
    cancelled_at: int | None
    request_counts: RequestCounts
    metadata: dict[str, str] | None


class BatchList(Answer):
    object: Literal["list"]
    data: list[Batch]
    has_more: bool
    first_id: str | None = None
    last_id: str | None = None


class Health(Answer):
    status: Literal["ok"]


class Ready(Answer):
    status: Literal["ok", "unavailable"]
    checks: dict[str, Any]


class GeneratedImage(Answer):
    b64_json: str | None = Field(None, description="with response_format b64_json: the PNG, base64")
    url: str | None = Field(None, description="with response_format url: a short-lived presigned link")
    revised_prompt: str = Field(description="the class the prompt was read as")


class ImagesResponse(Answer):
    created: int
    data: list[GeneratedImage]
    output_format: Literal["png"]
    size: str


class FineTuningError(Answer):
    code: str
    message: str
    param: str | None


class FineTuningHyperparameters(Answer):
    n_epochs: int
    batch_size: int
    learning_rate_multiplier: float


class FineTuningJob(Answer):
    """OpenAI's fine_tuning.job over a text.finetune job (the same id in /v1/jobs). A paused job reads
    `queued` (OpenAI's statuses have no paused) with `paused: true`."""

    id: str
    object: Literal["fine_tuning.job"]
    created_at: int
    error: FineTuningError | None
    fine_tuned_model: str | None
    finished_at: int | None
    hyperparameters: FineTuningHyperparameters
    model: str
    organization_id: str
    result_files: list[str]
    seed: int
    status: Literal["validating_files", "queued", "running", "succeeded", "failed", "cancelled"]
    trained_tokens: int | None
    training_file: str
    validation_file: str | None
    estimated_finish: int | None
    integrations: list[Any]
    metadata: dict[str, str] | None
    method: dict[str, Any]
    paused: bool = Field(description="paused: resume it with POST .../resume")
    lora: dict[str, Any] | None = Field(description="the adapter's settings when it trains one (known once it "
                                                    "runs, or when asked for)")
    progress: Progress | None


class FineTuningJobList(Answer):
    object: Literal["list"]
    data: list[FineTuningJob]
    has_more: bool


class FineTuningEvent(Answer):
    id: str
    object: Literal["fine_tuning.job.event"]
    created_at: int
    level: Literal["info", "warn", "error"]
    message: str
    type: Literal["message", "metrics"]
    data: dict[str, Any] | None


class FineTuningEventList(Answer):
    object: Literal["list"]
    data: list[FineTuningEvent]
    has_more: bool


class FineTuningCheckpoint(Answer):
    id: str
    object: Literal["fine_tuning.job.checkpoint"]
    created_at: int
    fine_tuned_model_checkpoint: str = Field(description="a model id, usable once the job has succeeded")
    fine_tuning_job_id: str
    metrics: dict[str, float]
    step_number: int


class FineTuningCheckpointList(Answer):
    object: Literal["list"]
    data: list[FineTuningCheckpoint]
    has_more: bool
    first_id: str | None
    last_id: str | None
