"""The registry of job kinds: one entry per kind, from which routing, validation, batching, the reaper, the spec and the pages are derived.

Adding a kind is one entry here and one task module under tasks/ whose Celery task is named
after the kind.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.gan_schemas import GanSampleInput, GanTrainInput
from core.schemas import TextChatInput, TextFinetuneInput, TextGenerateInput
from core.shapes import Shape


@dataclass(frozen=True)
class JobKind:
    """What the platform knows about one kind of job."""

    name: str  # also the name of the Celery task that runs it
    queue: str  # inference (short, latency-bound) | training (long) | default
    task_module: str  # where its task lives; a worker imports it
    input: type[Shape] | None  # None: not submitted through POST /v1/jobs (it has its own route)
    summary: str = ""
    # Fields that must match for queued jobs to be taken together by one worker (text: only the
    # model; the engine serves every request with its own settings); empty: one job per task message.
    batch_on: tuple[str, ...] = ()
    # Kinds with the same group share one batch list per model (text.generate and text.chat share
    # the model's engine); empty: the kind's own lists. The group's first kind names its task.
    batch_group: str = ""
    # The progress bar known at submission: (unit, input field holding the total).
    progress: tuple[str, str] | None = None
    # How web/static/job.js shows the output: generic | text | text.finetune | gan.train | gan.sample.
    page: str = "generic"
    # Further Celery tasks of this kind and their queues (a campaign's chunks and finalize).
    extra_tasks: dict[str, str] = field(default_factory=dict)
    # On a lost worker the reaper re-sends the kind's task with the job id; a kind with its own
    # recovery (campaigns: chunk by chunk) says False.
    reaper_resends: bool = True



KINDS: dict[str, JobKind] = {k.name: k for k in (
    JobKind("text.generate", "inference", "tasks.text_generate", TextGenerateInput,
            summary="Generate text from a prompt",
            batch_on=("model",), batch_group="text",
            progress=("tokens", "max_new_tokens"), page="text"),
    JobKind("text.chat", "inference", "tasks.text_chat", TextChatInput,
            summary="Write the assistant's next turn of a conversation (POST /v1/chat/completions)",
            batch_on=("model",), batch_group="text", progress=("tokens", "max_new_tokens"), page="text"),
    JobKind("text.finetune", "training", "tasks.text_finetune", TextFinetuneInput,
            summary="Fine-tune a text model on an uploaded file", page="text.finetune"),
    JobKind("gan.train", "training", "tasks.gan_train", GanTrainInput,
            summary="Train an image model (a DCGAN or a VAE, conditional or not) on a dataset", page="gan.train"),
    # Sampling jobs of one model share a task run (one claim, one heartbeat, one finishing round
    # trip): the images API's calls are small, and that overhead was a third of each.
    JobKind("gan.sample", "inference", "tasks.gan_sample", GanSampleInput, batch_on=("model",),
            progress=("images", "n"),
            summary="Sample images from a trained image model, of a class by name or prompt when it is conditional "
                    "(POST /v1/images/generations)", page="gan.sample"),
    JobKind("campaign", "default", "tasks.campaign", None,
            summary="Bulk generation from a CSV (POST /v1/campaigns, POST /v1/batches)",
            extra_tasks={"campaign.chunk": "inference", "campaign.finalize": "default"},
            reaper_resends=False),
)}


def submittable() -> dict[str, JobKind]:
    """The kinds POST /v1/jobs accepts."""
    return {name: k for name, k in KINDS.items() if k.input is not None}


# Tasks of the platform rather than of a kind: name -> (queue, module).
PLATFORM_TASKS = {"webhook.deliver": ("default", "tasks.webhooks")}


def task_routes() -> dict[str, dict]:
    """Celery routing: every task of every kind to its queue, by task name only."""
    routes = {name: {"queue": queue} for name, (queue, _) in PLATFORM_TASKS.items()}
    for k in KINDS.values():
        if k.input is not None:
            routes[k.name] = {"queue": k.queue}
        routes.update({task: {"queue": queue} for task, queue in k.extra_tasks.items()})
    return routes


def task_modules() -> list[str]:
    return list(dict.fromkeys([*(k.task_module for k in KINDS.values()),
                               *(module for _, module in PLATFORM_TASKS.values())]))


def initial_progress(kind: str, input: dict) -> dict | None:
    """A bar known from the start (0 of max_new_tokens for a generation), even while it waits."""
    spec = KINDS[kind].progress
    if spec is None:
        return None
    unit, total_field = spec
    return {"completed": 0, "total": input[total_field], "unit": unit, "eta_s": None}
