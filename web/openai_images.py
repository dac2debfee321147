"""OpenAI-compatible image generation: `POST /v1/images/generations`, a gan.sample job the route waits for,
answered as OpenAI answers it (each image a presigned link or base64 PNG)."""

from __future__ import annotations

import base64

from flask import Blueprint

from core.gan_schemas import image_file_name
from core.openai_image_schemas import ImageGenerationRequest
from core.shapes import parse
from core.storage import artifact_key
from web.auth import api_owner
from web.deps import get_settings, get_storage
from web.openai_api import answer_when_done, submit_for_openai
from web.openai_objects import unix
from web.request_input import json_body

bp = Blueprint("openai_images", __name__, url_prefix="/v1")


def images_object(job: dict, response_format: str) -> dict:
    """OpenAI's ImagesResponse from a finished gan.sample job that stored each image."""
    out, storage = job["output"], get_storage()
    keys = [artifact_key(job["id"], image_file_name(i)) for i in range(1, out["n"] + 1)]
    if response_format == "b64_json":
        data = [{"b64_json": base64.b64encode(storage.get_bytes(key)).decode("ascii")} for key in keys]
    else:
        ttl = get_settings().presign_ttl_s
        data = [{"url": storage.presigned_get(key, ttl)} for key in keys]
    revised = out.get("class", "")
    return {"created": unix(job["created_at"]), "data": [dict(d, revised_prompt=revised) for d in data],
            "output_format": "png", "size": out["size"]}


@bp.post("/images/generations")
def generate_images():
    """Images of the class the prompt names; the job stays listed like any other."""
    owner = api_owner()
    req = parse(ImageGenerationRequest, json_body(), "", get_settings())
    job, _, _ = submit_for_openai(owner, "gan.sample", req.job_input(), None, "max_tokens")
    fmt = req.response_format or "url"  # OpenAI's default for models that can return links
    return answer_when_done(job, lambda done: images_object(done, fmt), "max_tokens")
