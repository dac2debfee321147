"""Request shapes of `gan.train` and `gan.sample`, declared once; models.gan_training takes these values as they are."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, model_validator

from core.shapes import Shape, context, refuse
from core.schemas import Seed, file_of

BUILTIN_DATASETS = {"builtin:digits": "scikit-learn's 1,797 handwritten digits (grey, 8x8 scaled up)"}
GAN_PREFIX = "gan:"
DIFFAUGMENT_POLICIES = ("color", "translation", "cutout")
MAX_SAMPLES = 256  # per gan.sample job: one grid a page can show


_uploaded = file_of("gan-dataset").func


def _dataset(value: str, info) -> str:
    if value in BUILTIN_DATASETS:
        return value
    if value.startswith("builtin:"):
        raise refuse("invalid_input", f"Unknown built-in dataset {value!r}; built in: {sorted(BUILTIN_DATASETS)}")
    return _uploaded(value, info)


def _one_of(*options):
    def check_choice(value):
        if value not in options:
            raise refuse("invalid_input", f"must be one of {list(options)}", relative=True)
        return value
    return AfterValidator(check_choice)


def _policy(value: str) -> str:
    parts = [p.strip() for p in value.split(",") if p.strip()]
    for part in parts:
        if part not in DIFFAUGMENT_POLICIES:
            raise refuse("invalid_input", f"unknown policy {part!r}; use a comma list of "
                         f"{', '.join(DIFFAUGMENT_POLICIES)}, or \"\" for none")
    return ",".join(parts)


class GanTrainInput(Shape):
    """input of a gan.train job."""

    dataset: Annotated[str, Field(description=f"{', '.join(BUILTIN_DATASETS)} or a gan-dataset file id"),
                       AfterValidator(_dataset)]
    image_size: Annotated[int, Field(json_schema_extra={"enum": [32, 64]}), _one_of(32, 64)] = 32
    channels: Annotated[int, Field(json_schema_extra={"enum": [1, 3]}), _one_of(1, 3)] | None = Field(
        None, description="1 for the digits, 3 for uploaded images, unless given")
    max_images: Annotated[int, Field(ge=2, le=100_000)] | None = None
    epochs: Annotated[int, Field(ge=1, le=1000)] = 20
    batch_size: Annotated[int, Field(ge=2, le=1024)] = 64
    lr: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] = 2e-4
    beta1: Annotated[float, Field(ge=0, le=0.999, allow_inf_nan=False)] = 0.5
    nz: Annotated[int, Field(ge=2, le=512, description="length of the latent vector")] = 100
    ngf: Annotated[int, Field(ge=4, le=256, description="generator feature maps")] = 64
    ndf: Annotated[int, Field(ge=4, le=256, description="discriminator feature maps")] = 64
    seed: Seed = 0
    ema_decay: Annotated[float, Field(ge=0, le=0.99999, allow_inf_nan=False,
                                      description="sample from a moving average of G (0: off)")] = 0.999
    diffaugment: Annotated[str, Field(max_length=100, description="comma list of color, translation, cutout; "
                                      '"" for none'), AfterValidator(_policy)] = "translation,cutout"
    r1_gamma: Annotated[float, Field(ge=0, le=1000, allow_inf_nan=False)] = 0.0
    label_smoothing: Annotated[float, Field(ge=0, le=0.5, allow_inf_nan=False)] = 0.1
    sample_every: Annotated[int, Field(ge=1, le=1000, description="epochs between sample grids")] = 1

    @model_validator(mode="after")
    def _channels_follow_the_dataset(self):
        if self.channels is None:
            self.channels = 1 if self.dataset == "builtin:digits" else 3
        return self


def _gan_model(value: str, info) -> str:
    _, lookups = context(info)
    if not value.startswith(GAN_PREFIX) or not lookups.owns_model(value):
        raise refuse("model_not_found", f"Unknown GAN model {value!r}: train one with a gan.train job")
    return value


class Interpolate(Shape):
    """From `seed` to `to_seed` in `steps` images, along the sphere the latents live on."""

    to_seed: Seed
    steps: Annotated[int, Field(ge=2, le=64)] = 8


class GanSampleInput(Shape):
    """input of a gan.sample job."""

    model: Annotated[str, Field(description="one of your gan: models"), AfterValidator(_gan_model)]
    n: Annotated[int, Field(ge=1, le=MAX_SAMPLES)] = 64
    seed: Seed = 0
    interpolate: Interpolate | None = None

