"""POST /v1/fine_tuning/jobs as OpenAI's client sends it, and its translation to a text.finetune job's input.

OpenAI's names (n_epochs, learning_rate_multiplier, "auto") are the request's; the job keeps the
platform's own (core/schemas.py, FinetuneHyperparameters), and errors name what the caller sent.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, WithJsonSchema

from core.schemas import FinetuneHyperparameters, LoraChoice, Metadata, Seed
from core.shapes import Shape

DEFAULTS = FinetuneHyperparameters()


def _auto(value: Any) -> Any:
    return None if value == "auto" else value


def auto_or(number: type, **bounds) -> Any:
    """A number or "auto" (read as unset: the platform's default). Not a union, so that an error
    names the field alone, as the caller wrote it."""
    kind = "integer" if number is int else "number"
    return Annotated[Annotated[number, Field(**bounds)] | None, BeforeValidator(_auto),
                     WithJsonSchema({"anyOf": [{"type": kind}, {"const": "auto"}]})]


class SupervisedHyperparameters(Shape):
    """OpenAI's three, each a number or "auto" (the platform's default), and the platform's own
    settings besides (max_steps, block_size, warmup_steps, eval_every, checkpoint_every, lora)."""

    n_epochs: auto_or(int, ge=1, le=100) = Field("auto", description=f"auto: {DEFAULTS.epochs}")
    batch_size: auto_or(int, ge=1, le=256) = Field("auto", description=f"auto: {DEFAULTS.batch_size}")
    learning_rate_multiplier: auto_or(float, gt=0, le=100, allow_inf_nan=False) = Field(
        "auto", description=f"times the base learning rate {DEFAULTS.learning_rate}; auto: 1")
    max_steps: int | None = None
    block_size: int | None = None
    warmup_steps: int | None = None
    eval_every: int | None = None
    checkpoint_every: int | None = None
    lora: LoraChoice = Field(
        None, description="a LoRA adapter (its settings, or true) or, with false, every weight; "
                          "unset: an adapter for bases over 50M parameters")


class Supervised(Shape):
    hyperparameters: SupervisedHyperparameters | None = None


class Method(Shape):
    type: Literal["supervised"] = Field(description="supervised only: dpo and reinforcement are not offered")
    supervised: Supervised | None = None


class FineTuningJobCreate(Shape):
    model: str = Field(description="the base: any text model you may name (a built-in, a directory, a Hub id, "
                                   "one of your ft: models)")
    training_file: str = Field(description="a file uploaded with purpose fine-tune")
    validation_file: str | None = None
    hyperparameters: SupervisedHyperparameters | None = Field(None, description="OpenAI's older place for them; "
                                                                                 "method's win")
    method: Method | None = None
    suffix: str | None = Field(None, description="up to 40 lowercase letters, digits or '-', in the model's name")
    seed: Seed | None = None
    metadata: Metadata = {}
    integrations: Annotated[list[Any], Field(max_length=0)] | None = Field(None, description="none are offered")


# OpenAI's name -> the job input's name, for the values and for errors.
_RENAMED = {"n_epochs": "epochs", "learning_rate_multiplier": "learning_rate"}


def job_input(req: FineTuningJobCreate) -> dict:
    """The text.finetune input the request asks for (checked again, whole, as a job's input)."""
    chosen = req.hyperparameters
    if req.method and req.method.supervised and req.method.supervised.hyperparameters:
        chosen = req.method.supervised.hyperparameters
    hp: dict[str, Any] = {}
    if chosen is not None:
        for name, value in chosen.model_dump(exclude_none=True, exclude_unset=True).items():
            hp[_RENAMED.get(name, name)] = value * DEFAULTS.learning_rate if name == "learning_rate_multiplier" else value
    if req.seed is not None:
        hp["seed"] = req.seed
    inp = {"base_model": req.model, "training_file": req.training_file, "hyperparameters": hp}
    if req.validation_file is not None:
        inp["validation_file"] = req.validation_file
    if req.suffix is not None:
        inp["suffix"] = req.suffix
    return inp


def request_param(param: str | None, via_method: bool) -> str | None:
    """input.hyperparameters.epochs -> hyperparameters.n_epochs (or under method): the caller's names."""
    if not param:
        return param
    name = param.removeprefix("input.")
    for theirs, ours in _RENAMED.items():
        name = name.replace(f"hyperparameters.{ours}", f"hyperparameters.{theirs}")
    if name.startswith("hyperparameters.") and via_method:
        name = "method.supervised." + name
    return {"base_model": "model", "hyperparameters.seed": "seed",
            "method.supervised.hyperparameters.seed": "seed"}.get(name, name)
