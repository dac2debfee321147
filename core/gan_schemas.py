"""Request shapes of `gan.train` and `gan.sample` (image models: DCGANs and VAEs), declared once;
models.gan_training and models.vae take these values as they are."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, model_validator

from core.image_classes import NoClass, class_from_prompt, class_index
from core.shapes import Shape, context, refuse
from core.schemas import Seed, file_of

BUILTIN_DATASETS = {"builtin:digits": "scikit-learn's 1,797 handwritten digits (grey, 8x8 scaled up, labelled 0-9)"}
ARCHITECTURES = ("dcgan", "vae")
IMAGE_MODEL_PREFIXES = {"dcgan": "gan:", "vae": "vae:"}
GAN_PREFIX = "gan:"
DIFFAUGMENT_POLICIES = ("color", "translation", "cutout")
MAX_SAMPLES = 256  # per gan.sample job: one grid a page can show
UPSCALES = (256, 512)  # sizes a sample may be scaled up to, beside the model's own
MAX_SAMPLES_AT_512 = 64  # 512x512 images hold 64-256 times the pixels of a native one
# Training settings that only an adversarial run has; a VAE refuses them when given.
GAN_ONLY = ("ema_decay", "diffaugment", "r1_gamma", "label_smoothing")
# Optimiser defaults per architecture: DCGAN's paper values, and the usual VAE ones.
OPTIMISER_DEFAULTS = {"dcgan": {"lr": 2e-4, "beta1": 0.5}, "vae": {"lr": 1e-3, "beta1": 0.9}}


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


def _gan_only(value, info):
    """A stabiliser given for a VAE is refused rather than silently ignored."""
    if info.data.get("architecture") == "vae":
        raise refuse("invalid_input", "applies to a dcgan only (an adversarial stabiliser); leave it out for a vae",
                     relative=True)
    return value


GanOnly = AfterValidator(_gan_only)


def _policy(value: str) -> str:
    parts = [p.strip() for p in value.split(",") if p.strip()]
    for part in parts:
        if part not in DIFFAUGMENT_POLICIES:
            raise refuse("invalid_input", f"unknown policy {part!r}; use a comma list of "
                         f"{', '.join(DIFFAUGMENT_POLICIES)}, or \"\" for none")
    return ",".join(parts)


class GanTrainInput(Shape):
    """input of a gan.train job: a DCGAN or a VAE, unconditional or class-conditional."""

    architecture: Annotated[Literal["dcgan", "vae"], Field(description="dcgan (a GAN) or vae")] = "dcgan"
    conditional: Annotated[bool, Field(description="learn each class of the dataset (the digits, or the class "
                                                   "folders of an archive) so samples can be asked for by class")] = False
    dataset: Annotated[str, Field(description=f"{', '.join(BUILTIN_DATASETS)} or a gan-dataset file id"),
                       AfterValidator(_dataset)]
    image_size: Annotated[int, Field(json_schema_extra={"enum": [32, 64]}), _one_of(32, 64)] = 32
    channels: Annotated[int, Field(json_schema_extra={"enum": [1, 3]}), _one_of(1, 3)] | None = Field(
        None, description="1 for the digits, 3 for uploaded images, unless given")
    max_images: Annotated[int, Field(ge=2, le=100_000)] | None = None
    epochs: Annotated[int, Field(ge=1, le=1000)] = 20
    batch_size: Annotated[int, Field(ge=2, le=1024)] = 64
    lr: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False, description="2e-4 for dcgan, 1e-3 for vae, unless given")] | None = None
    beta1: Annotated[float, Field(ge=0, le=0.999, allow_inf_nan=False, description="0.5 for dcgan, 0.9 for vae, unless given")] | None = None
    nz: Annotated[int, Field(ge=2, le=512, description="length of the latent vector")] = 100
    ngf: Annotated[int, Field(ge=4, le=256, description="generator feature maps")] = 64
    ndf: Annotated[int, Field(ge=4, le=256, description="discriminator feature maps")] = 64
    seed: Seed = 0
    ema_decay: Annotated[float, Field(ge=0, le=0.99999, allow_inf_nan=False,
                                      description="sample from a moving average of G (0: off)"), GanOnly] = 0.999
    diffaugment: Annotated[str, Field(max_length=100, description="comma list of color, translation, cutout; "
                                      '"" for none'), AfterValidator(_policy), GanOnly] = "translation,cutout"
    r1_gamma: Annotated[float, Field(ge=0, le=1000, allow_inf_nan=False), GanOnly] = 0.0
    label_smoothing: Annotated[float, Field(ge=0, le=0.5, allow_inf_nan=False), GanOnly] = 0.1
    sample_every: Annotated[int, Field(ge=1, le=1000, description="epochs between sample grids")] = 1

    @model_validator(mode="after")
    def _defaults_follow_the_dataset_and_architecture(self):
        if self.channels is None:
            self.channels = 1 if self.dataset == "builtin:digits" else 3
        for name, value in OPTIMISER_DEFAULTS[self.architecture].items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        return self


def _gan_model(value: str, info) -> str:
    _, lookups = context(info)
    if not value.startswith(tuple(IMAGE_MODEL_PREFIXES.values())) or not lookups.owns_model(value):
        raise refuse("model_not_found", f"Unknown image model {value!r}: train one with a gan.train job")
    return value


def _model_info(info) -> dict | None:
    """The registry info of the model named before this field, when that name was valid."""
    _, lookups = context(info)
    model = info.data.get("model")
    return lookups.image_model(model) if model else None


def _classes(info, field: str) -> list[str] | None:
    model_info = _model_info(info)
    if model_info is None:
        return None  # the model's own error says why
    # A model trained before `info` was recorded has {}: it predates conditional models.
    classes = model_info.get("classes") or []
    if not model_info.get("conditional") or not classes:
        raise refuse("invalid_input", f"{info.data['model']} is not conditional: it cannot be asked for a {field}; "
                     "train one with conditional: true")
    return classes


def _name_or_index(value):
    if value is None or isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise refuse("invalid_input", "must be a class name (a string) or index (an integer)", relative=True)


def _names_a_class(resolve, value, info, field: str):
    """Refuse a value the model's classes cannot resolve (with the model's own list in the message)."""
    classes = _classes(info, field)
    if classes is not None:
        try:
            resolve(classes, value)
        except NoClass as exc:
            raise refuse("invalid_input", str(exc)) from None
    return value


def _class(value: str | int | None, info) -> str | int | None:
    return value if value is None else _names_a_class(class_index, value, info, "class")


def _prompt(value: str, info) -> str:
    if info.data.get("class_") is not None:
        raise refuse("invalid_input", "Give class or prompt, not both")
    return _names_a_class(class_from_prompt, value, info, "prompt")


def image_file_name(index: int) -> str:
    """The artifact holding a gan.sample job's index-th image (1-based) when image_files is set."""
    return f"image-{index:03d}.png"


def size_choices(native: int) -> list[str]:
    return [f"{s}x{s}" for s in sorted({native, *UPSCALES})]


def _size(value: str, info) -> str:
    if value == "512x512" and info.data.get("n", 0) > MAX_SAMPLES_AT_512:
        raise refuse("invalid_input", f"512x512 allows n <= {MAX_SAMPLES_AT_512} images per request", relative=True)
    model_info = _model_info(info) or {}
    # Models trained before their size was recorded are checked by the worker, which knows it.
    native = model_info.get("image_size")
    choices = size_choices(int(native)) if native else [f"{s}x{s}" for s in (32, 64, *UPSCALES)]
    if value not in choices:
        raise refuse("invalid_input", f"must be one of {choices} (the model's own size, or an upscale)",
                     relative=True)
    return value


class Interpolate(Shape):
    """From `seed` to `to_seed` in `steps` images, along the sphere the latents live on."""

    to_seed: Seed
    steps: Annotated[int, Field(ge=2, le=64)] = 8


class GanSampleInput(Shape):
    """input of a gan.sample job."""

    # "class" is a Python keyword: the field is class_ here, "class" in the API and the job.
    model_config = ConfigDict(serialize_by_alias=True)

    model: Annotated[str, Field(description="one of your gan: or vae: models"), AfterValidator(_gan_model)]
    n: Annotated[int, Field(ge=1, le=MAX_SAMPLES)] = 64
    seed: Seed = 0
    interpolate: Interpolate | None = None
    class_: Annotated[str | int | None, Field(alias="class", description="a conditional model's class, by name or index"),
                      BeforeValidator(_name_or_index), AfterValidator(_class)] = None
    prompt: Annotated[str, Field(min_length=1, max_length=1000, description="text naming one class: "
                                 '"a handwritten seven", "7", "七"'), AfterValidator(_prompt)] | None = None
    size: Annotated[str, Field(description='"WxH": the model\'s own size (the default), 256x256 or 512x512'),
                    AfterValidator(_size)] | None = None
    image_files: Annotated[bool, Field(description="also store each image as its own PNG (image-001.png, ...)")] = False
