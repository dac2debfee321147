"""OpenAI's POST /v1/images/generations body, declared once, and the gan.sample job input it maps to.

As on the text routes, a parameter the platform cannot honour is a 400 naming it: each is
accepted only with a value that asks for nothing beyond what the platform does.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from core.openai_schemas import _refused
from core.schemas import Seed
from core.shapes import Shape

MAX_IMAGES_PER_REQUEST = 64


def _auto(*also):
    return lambda v: v in (None, "auto", *also)


class ImageGenerationRequest(Shape):
    """POST /v1/images/generations: images of the class a prompt names, from a conditional image model."""

    prompt: Annotated[str, Field(min_length=1, max_length=1000, description='names a class: "a handwritten seven"')]
    model: Annotated[str, Field(min_length=1, description="one of your conditional gan: or vae: models")]
    n: Annotated[int, Field(ge=1, le=MAX_IMAGES_PER_REQUEST)] | None = None
    size: Annotated[str, Field(description='"auto" or the model\'s own size (both the default), 256x256 or 512x512')] | None = None
    response_format: Literal["url", "b64_json"] | None = None
    seed: Seed | None = Field(None, description="an extension: the same seed gives the same images")
    user: Annotated[str, Field(max_length=256)] | None = None
    safety_identifier: Annotated[str, Field(max_length=256)] | None = None
    output_format: Annotated[Any, _refused("images are PNG", lambda v: v in (None, "png"))] = None
    quality: Annotated[Any, _refused("there is one quality", _auto("standard"))] = None
    style: Annotated[Any, _refused("styles are not implemented", lambda v: v is None)] = None
    background: Annotated[Any, _refused("backgrounds are not chosen", _auto("opaque"))] = None
    moderation: Annotated[Any, _refused("there is no moderation setting", _auto("low"))] = None
    output_compression: Annotated[Any, _refused("images are lossless PNG", lambda v: v in (None, 100))] = None
    partial_images: Annotated[Any, _refused("partial images are not streamed", lambda v: v in (None, 0))] = None
    stream: Annotated[Any, _refused("images are returned whole", lambda v: v in (None, False))] = None
    complexity: Annotated[Any, _refused("there is one complexity", lambda v: v is None)] = None
    frame_count: Annotated[Any, _refused("images are single frames", lambda v: v in (None, 1))] = None
    frame_duration_ms: Annotated[Any, _refused("images are single frames", lambda v: v is None)] = None
    svg: Annotated[Any, _refused("images are PNG", lambda v: v is None)] = None

    def job_input(self) -> dict:
        inp = {"model": self.model, "prompt": self.prompt, "n": self.n or 1, "seed": self.seed or 0,
               "image_files": True}
        if self.size not in (None, "auto"):
            inp["size"] = self.size
        return inp
