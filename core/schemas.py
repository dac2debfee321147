"""Input schemas: validate a job request and return clean input, or InvalidInput naming the field."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

from core.catalog import resolve_text_model
from core.config import Settings
from core.errors import InvalidInput
from core.gan_schemas import gan_sample_input, gan_train_input
from core.validate import MISSING, fields, file_id, int_field, number_field, string_field


@dataclass(frozen=True)
class Lookups:
    """What validation needs to know about the caller's own models and files."""

    owns_model: Callable[[str], bool] = lambda _id: False
    file: Callable[[str], dict | None] = lambda _id: None
    published: Callable[[], dict[str, str]] = lambda: {}  # models the live workers announce


NO_LOOKUPS = Lookups()


def _stop(value, param):
    if value is None:
        return []
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or len(items) > 4:
        raise InvalidInput(f"{param} must be a string or a list of at most 4 strings", param=param)
    return [string_field(s, f"{param}[{i}]", 64) for i, s in enumerate(items)]


def text_generate_input(data: Any, settings: Settings, lookups: Lookups = NO_LOOKUPS) -> dict:
    spec = {
        "model": (MISSING, lambda v, p: resolve_text_model(v, settings, p, lookups.owns_model, lookups.published).id),
        "prompt": (MISSING, lambda v, p: string_field(v, p, settings.max_prompt_chars)),
        "max_new_tokens": (min(64, settings.max_new_tokens), lambda v, p: int_field(v, p, 1, settings.max_new_tokens)),
        "temperature": (1.0, lambda v, p: number_field(v, p, 0, 2)),
        "top_p": (1.0, lambda v, p: number_field(v, p, 0, 1, lo_open=True)),
        "top_k": (0, lambda v, p: int_field(v, p, 0, 1000)),
        "n": (1, lambda v, p: int_field(v, p, 1, settings.max_choices)),
        "seed": (None, lambda v, p: int_field(v, p, 0, 2**32 - 1)),
        "stop": ([], _stop),
    }
    return fields(data, "input", spec)


_SUFFIX_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")


def _suffix(value, param):
    if not isinstance(value, str) or not _SUFFIX_RE.match(value):
        raise InvalidInput(f"{param} must be 1-40 lowercase letters, digits or '-'", param=param)
    return value


def finetune_hyperparameters(data: Any, param: str = "input.hyperparameters") -> dict:
    spec = {
        "epochs": (3, lambda v, p: int_field(v, p, 1, 100)),
        "max_steps": (None, lambda v, p: int_field(v, p, 1, 1_000_000)),  # overrides epochs when set
        "batch_size": (8, lambda v, p: int_field(v, p, 1, 256)),
        "learning_rate": (5e-4, lambda v, p: number_field(v, p, 0, 1, lo_open=True)),
        "block_size": (128, lambda v, p: int_field(v, p, 8, 4096)),
        "warmup_steps": (10, lambda v, p: int_field(v, p, 0, 100_000)),
        "seed": (0, lambda v, p: int_field(v, p, 0, 2**32 - 1)),
        "eval_every": (50, lambda v, p: int_field(v, p, 1, 100_000)),
        "checkpoint_every": (100, lambda v, p: int_field(v, p, 1, 100_000)),
    }
    return fields({} if data is None else data, param, spec)


def text_finetune_input(data: Any, settings: Settings, lookups: Lookups = NO_LOOKUPS) -> dict:
    spec = {
        "base_model": (MISSING, lambda v, p: resolve_text_model(v, settings, p, lookups.owns_model, lookups.published).id),
        "training_file": (MISSING, file_id("fine-tune", lookups)),
        "validation_file": (None, file_id("fine-tune", lookups)),
        "suffix": ("custom", _suffix),
        "hyperparameters": ({}, lambda v, p: v),
    }
    clean = fields(data, "input", spec)
    clean["hyperparameters"] = finetune_hyperparameters(clean["hyperparameters"])
    return clean


def generation_params(data: Any, settings: Settings, param: str) -> dict:
    """Sampling settings shared by every row of a campaign (a seed of 0 unless given)."""
    spec = {
        "max_new_tokens": (min(64, settings.max_new_tokens), lambda v, p: int_field(v, p, 1, settings.max_new_tokens)),
        "temperature": (1.0, lambda v, p: number_field(v, p, 0, 2)),
        "top_p": (1.0, lambda v, p: number_field(v, p, 0, 1, lo_open=True)),
        "top_k": (0, lambda v, p: int_field(v, p, 0, 1000)),
        "seed": (0, lambda v, p: int_field(v, p, 0, 2**32 - 1)),
        "stop": ([], _stop),
    }
    return fields({} if data is None else data, param, spec)


def campaign_create(body: Any, settings: Settings, lookups: Lookups = NO_LOOKUPS) -> dict:
    """POST /v1/campaigns: rows (a campaign file or inline) are checked by the caller against
    the template; this checks the shape of the request."""
    spec = {
        "input_file": (None, file_id("campaign", lookups)),
        "rows": (None, lambda v, p: v),
        "template": (MISSING, lambda v, p: string_field(v, p, 8000)),
        "model": (MISSING, lambda v, p: resolve_text_model(v, settings, p, lookups.owns_model, lookups.published).id),
        "generation": ({}, lambda v, p: generation_params(v, settings, p)),
        "n": (1, lambda v, p: int_field(v, p, 1, settings.max_choices)),
        "id_column": (None, lambda v, p: string_field(v, p, 200)),
        "metadata": ({}, lambda v, p: v),
    }
    clean = fields(body, "", spec)
    if (clean["input_file"] is None) == (clean["rows"] is None):
        raise InvalidInput("Give exactly one of input_file and rows", param="input_file")
    if clean["generation"] == {}:
        clean["generation"] = generation_params({}, settings, "generation")
    return clean


# Job kinds this build accepts, each with the validator of its input.
JOB_KINDS: dict[str, Callable[[Any, Settings, Lookups], dict]] = {
    "text.generate": text_generate_input,
    "text.finetune": text_finetune_input,
    "gan.train": gan_train_input,
    "gan.sample": gan_sample_input,
}


def job_create(body: Any, settings: Settings, lookups: Lookups = NO_LOOKUPS) -> dict:
    """Validate a POST /v1/jobs body: {"kind", "input", "metadata"?}."""
    if not isinstance(body, dict):
        raise InvalidInput("The request body must be a JSON object", param=None)
    unknown = sorted(set(body) - {"kind", "input", "metadata"})
    if unknown:
        raise InvalidInput(f"Unknown field {unknown[0]!r}", param=unknown[0])
    kind = body.get("kind")
    if kind not in JOB_KINDS:
        raise InvalidInput(f"kind must be one of {sorted(JOB_KINDS)}", param="kind")
    if "input" not in body:
        raise InvalidInput("input is required", param="input")
    metadata = body.get("metadata")
    metadata = {} if metadata is None else metadata
    if not isinstance(metadata, dict) or len(metadata) > 16 or not all(
            isinstance(k, str) and len(k) <= 64 and isinstance(v, str) and len(v) <= 512
            for k, v in metadata.items()):
        raise InvalidInput("metadata must be an object of at most 16 string values", param="metadata")
    return {"kind": kind, "input": JOB_KINDS[kind](body["input"], settings, lookups), "metadata": metadata}
