"""Input schemas of `gan.train` and `gan.sample`: clean input, or InvalidInput naming the field."""

from __future__ import annotations

from typing import Any

from core.errors import InvalidInput
from core.validate import MISSING, fields, file_id, int_field, number_field, string_field

BUILTIN_DATASETS = {"builtin:digits": "scikit-learn's 1,797 handwritten digits (grey, 8x8 scaled up)"}
GAN_PREFIX = "gan:"
DIFFAUGMENT_POLICIES = ("color", "translation", "cutout")
MAX_SAMPLES = 256  # per gan.sample job: one grid a page can show


def _dataset(lookups):
    uploaded = file_id("gan-dataset", lookups)

    def check(value, param):
        if value in BUILTIN_DATASETS:
            return value
        if isinstance(value, str) and value.startswith("builtin:"):
            raise InvalidInput(f"Unknown built-in dataset {value!r}; built in: {sorted(BUILTIN_DATASETS)}",
                               param=param)
        return uploaded(value, param)
    return check


def _choice(options):
    def check(value, param):
        if value not in options:
            raise InvalidInput(f"{param} must be one of {list(options)}", param=param)
        return value
    return check


def _policy(value, param):
    parts = [p.strip() for p in string_field(value, param, 100, allow_empty=True).split(",") if p.strip()]
    for part in parts:
        if part not in DIFFAUGMENT_POLICIES:
            raise InvalidInput(f"{param}: unknown policy {part!r}; use a comma list of "
                               f"{', '.join(DIFFAUGMENT_POLICIES)}, or \"\" for none", param=param)
    return ",".join(parts)


def gan_train_input(data: Any, settings, lookups) -> dict:
    spec = {
        "dataset": (MISSING, _dataset(lookups)),
        "image_size": (32, _choice((32, 64))),
        "channels": (None, _choice((1, 3))),  # default: 1 for digits, 3 for uploaded images
        "max_images": (None, lambda v, p: int_field(v, p, 2, 100_000)),
        "epochs": (20, lambda v, p: int_field(v, p, 1, 1000)),
        "batch_size": (64, lambda v, p: int_field(v, p, 2, 1024)),
        "lr": (2e-4, lambda v, p: number_field(v, p, 0, 1, lo_open=True)),
        "beta1": (0.5, lambda v, p: number_field(v, p, 0, 0.999)),
        "nz": (100, lambda v, p: int_field(v, p, 2, 512)),
        "ngf": (64, lambda v, p: int_field(v, p, 4, 256)),
        "ndf": (64, lambda v, p: int_field(v, p, 4, 256)),
        "seed": (0, lambda v, p: int_field(v, p, 0, 2**32 - 1)),
        "ema_decay": (0.999, lambda v, p: number_field(v, p, 0, 0.99999)),
        "diffaugment": ("translation,cutout", _policy),
        "r1_gamma": (0.0, lambda v, p: number_field(v, p, 0, 1000)),
        "label_smoothing": (0.1, lambda v, p: number_field(v, p, 0, 0.5)),
        "sample_every": (1, lambda v, p: int_field(v, p, 1, 1000)),
    }
    clean = fields(data, "input", spec)
    if clean["channels"] is None:
        clean["channels"] = 1 if clean["dataset"] == "builtin:digits" else 3
    return clean


def resolve_gan_model(value, param: str, lookups) -> str:
    if not isinstance(value, str) or not value.startswith(GAN_PREFIX) or not lookups.owns_model(value):
        raise InvalidInput(f"Unknown GAN model {value!r}: train one with a gan.train job", param=param,
                           code="model_not_found")
    return value


def _interpolate(value, param):
    spec = {"to_seed": (MISSING, lambda v, p: int_field(v, p, 0, 2**32 - 1)),
            "steps": (8, lambda v, p: int_field(v, p, 2, 64))}
    return fields(value, param, spec)


def gan_sample_input(data: Any, settings, lookups) -> dict:
    spec = {
        "model": (MISSING, lambda v, p: resolve_gan_model(v, p, lookups)),
        "n": (64, lambda v, p: int_field(v, p, 1, MAX_SAMPLES)),
        "seed": (0, lambda v, p: int_field(v, p, 0, 2**32 - 1)),
        # From `seed` to `to_seed` in `steps` images, along the sphere the latents live on.
        "interpolate": (None, _interpolate),
    }
    return fields(data, "input", spec)
