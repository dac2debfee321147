"""The OpenAPI 3.1 document, generated: paths from the route table below, bodies from the declared shapes (core.schemas, core.api_objects).

tests/unit/test_web_app.py keeps the table true to the app's routes, and
tests/integration/test_openapi_responses.py holds real responses of every route to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from pydantic.json_schema import models_json_schema

from core import api_objects as obj
from core.job_kinds import KINDS, submittable
from core.jobs import STATUSES
from core.openai_image_schemas import ImageGenerationRequest
from core.openai_finetune_schemas import FineTuningJobCreate
from core.openai_schemas import ChatCompletionRequest, CompletionRequest
from core.schemas import CampaignCreate, JobCreate, WebhookDefault

_REF = "#/components/schemas/{model}"
_INPUTS = [JobCreate, CampaignCreate, CompletionRequest, ChatCompletionRequest, ImageGenerationRequest, WebhookDefault,
           FineTuningJobCreate,
           *(k.input for k in submittable().values())]
_ANSWERS = [obj.Error, obj.Job, obj.JobList, obj.Event, obj.EventList, obj.Model, obj.ModelList, obj.Deleted, obj.File,
            obj.FileList, obj.Campaign, obj.CampaignList, obj.Completion, obj.CompletionChunk, obj.ChatCompletion,
            obj.ChatCompletionChunk, obj.Batch, obj.BatchList, obj.Health, obj.Ready, obj.ImagesResponse,
            obj.WebhookSecret, obj.WebhookDefaultUrl, obj.FineTuningJob, obj.FineTuningJobList, obj.FineTuningEventList,
            obj.FineTuningCheckpointList]
_FILE = {"description": "The file"}
_PRESIGNED = {"description": "A short-lived presigned URL"}


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    summary: str
    ok: tuple[int, type | None]  # status and answer shape (None: a file)
    errors: tuple[int, ...] = (401, 404)
    body: type | str | None = None  # a declared shape, "multipart" or None
    query: dict[str, dict] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    public: bool = False  # no API key needed
    redirect: bool = False  # may answer 302 to presigned storage
    stream: type | None = None  # may answer text/event-stream, `data: {this shape}` events


def _kind_enum() -> dict:
    return {"enum": sorted(KINDS)}


ROUTES = (
    Route("get", "/healthz", "The process is up", (200, obj.Health), errors=(), public=True),
    Route("get", "/readyz", "Redis, storage and a worker are reachable (503 with what is missing)",
          (200, obj.Ready), errors=(503,), public=True),
    Route("get", "/v1/openapi.json", "This document", (200, None), errors=(), public=True),
    Route("post", "/v1/jobs", "Queue a job", (202, obj.Job), (400, 401, 409, 413, 503), body=JobCreate,
          headers={"Idempotency-Key": "the same key and body return the same job"}),
    Route("get", "/v1/jobs", "My jobs, newest first (cursor pagination)", (200, obj.JobList), (400, 401),
          query={"kind": _kind_enum(), "status": {"enum": list(STATUSES)},
                 "limit": {"type": "integer", "minimum": 1, "maximum": 100}, "after": {"type": "string"}}),
    Route("get", "/v1/jobs/{job_id}", "One job", (200, obj.Job)),
    Route("post", "/v1/jobs/{job_id}/cancel", "Cancel a job", (200, obj.Job)),
    Route("get", "/v1/jobs/{job_id}/events", "Status changes, progress, metrics and logs after a sequence number; "
          "with Accept: text/event-stream, live as server-sent events until the job ends",
          (200, obj.EventList), (400, 401, 404), query={"after": {"type": "integer"}}, stream=obj.Event),
    Route("get", "/v1/jobs/{job_id}/artifacts/{name}", "Download an artifact", (200, None), redirect=True),
    Route("get", "/v1/models", "Models I can use (kind=text or gan: only those)", (200, obj.ModelList), (400, 401),
          query={"kind": {"enum": ["text", "gan"]}}),
    Route("get", "/v1/models/{model_id}", "One model I can use", (200, obj.Model)),
    Route("delete", "/v1/models/{model_id}", "Delete one of my trained models and its weights", (200, obj.Deleted)),
    Route("post", "/v1/files", "Upload a file (checked for its purpose)", (201, obj.File), (400, 401, 413),
          body="multipart"),
    Route("get", "/v1/files", "My files, newest first (cursor pagination)", (200, obj.FileList), (400, 401, 404),
          query={"purpose": {"type": "string"}, "after": {"type": "string"}, "order": {"enum": ["asc", "desc"]},
                 "limit": {"type": "integer", "minimum": 1, "maximum": 10000}}),
    Route("get", "/v1/files/{file_id}", "One file", (200, obj.File)),
    Route("delete", "/v1/files/{file_id}", "Delete a file", (200, obj.Deleted)),
    Route("get", "/v1/files/{file_id}/content", "A file's bytes (batch output and error files included)",
          (200, None)),
    Route("post", "/v1/campaigns", "Start a campaign: rows (a campaign file or inline) and a template",
          (202, obj.Campaign), (400, 401, 413), body=CampaignCreate),
    Route("get", "/v1/campaigns", "My campaigns, newest first", (200, obj.CampaignList), (401,),
          query={"after": {"type": "string"}}),
    Route("get", "/v1/campaigns/{campaign_id}", "One campaign", (200, obj.Campaign)),
    Route("post", "/v1/campaigns/{campaign_id}/cancel", "Stop a campaign, keeping what is done", (200, obj.Campaign)),
    Route("get", "/v1/campaigns/{campaign_id}/artifacts/{name}", "output.jsonl, output.csv or errors.jsonl",
          (200, None), redirect=True),
    Route("post", "/v1/completions", "OpenAI-compatible completion: queue, wait, answer (504 with the job id "
          "if still queued); with stream: true, text/event-stream of CompletionChunk",
          (200, obj.Completion), (400, 401, 409, 500, 504), body=CompletionRequest, stream=obj.CompletionChunk,
          headers={"Idempotency-Key": "a retry with the same key and body waits on the first job"}),
    Route("post", "/v1/chat/completions", "OpenAI-compatible chat completion, a text.chat job: queue, wait, answer; "
          "with stream: true, text/event-stream of ChatCompletionChunk",
          (200, obj.ChatCompletion), (400, 401, 409, 500, 504), body=ChatCompletionRequest,
          stream=obj.ChatCompletionChunk,
          headers={"Idempotency-Key": "a retry with the same key and body waits on the first job"}),
    Route("post", "/v1/images/generations", "OpenAI-compatible image generation, a gan.sample job: the class a "
          "prompt names, from a conditional image model; queue, wait, answer",
          (200, obj.ImagesResponse), (400, 401, 409, 500, 504), body=ImageGenerationRequest,
          headers={"Idempotency-Key": "a retry with the same key and body waits on the first job"}),
    Route("post", "/v1/batches", "OpenAI-compatible batch of /v1/completions requests (a batch file)",
          (200, obj.Batch), (400, 401), body="object"),
    Route("get", "/v1/batches", "My batches", (200, obj.BatchList), (401,), query={"after": {"type": "string"}}),
    Route("get", "/v1/batches/{batch_id}", "One batch", (200, obj.Batch)),
    Route("post", "/v1/batches/{batch_id}/cancel", "Cancel a batch", (200, obj.Batch)),
    Route("post", "/v1/fine_tuning/jobs", "OpenAI-compatible fine-tuning: queue a text.finetune job (full or LoRA) "
          "on a fine-tune file", (200, obj.FineTuningJob), (400, 401, 409, 413, 503), body=FineTuningJobCreate,
          headers={"Idempotency-Key": "the same key and body return the same job"}),
    Route("get", "/v1/fine_tuning/jobs", "My fine-tuning jobs, newest first", (200, obj.FineTuningJobList), (400, 401),
          query={"after": {"type": "string"}, "limit": {"type": "integer", "minimum": 1, "maximum": 100}}),
    Route("get", "/v1/fine_tuning/jobs/{job_id}", "One fine-tuning job", (200, obj.FineTuningJob)),
    Route("post", "/v1/fine_tuning/jobs/{job_id}/cancel", "Cancel a fine-tuning job", (200, obj.FineTuningJob),
          (400, 401, 404)),
    Route("post", "/v1/fine_tuning/jobs/{job_id}/pause", "Pause: checkpoint and free the worker",
          (200, obj.FineTuningJob), (400, 401, 404)),
    Route("post", "/v1/fine_tuning/jobs/{job_id}/resume", "Resume a paused job from its last checkpoint",
          (200, obj.FineTuningJob), (400, 401, 404, 429)),
    Route("get", "/v1/fine_tuning/jobs/{job_id}/events", "The job's events, newest first",
          (200, obj.FineTuningEventList), (400, 401, 404),
          query={"after": {"type": "string"}, "limit": {"type": "integer", "minimum": 1, "maximum": 1000}}),
    Route("get", "/v1/fine_tuning/jobs/{job_id}/checkpoints", "The job's kept checkpoints, newest first; each a "
          "model once the job has succeeded", (200, obj.FineTuningCheckpointList), (400, 401, 404),
          query={"after": {"type": "string"}, "limit": {"type": "integer", "minimum": 1, "maximum": 100}}),
    Route("post", "/v1/webhooks/secret", "Make (or replace) your webhook signing secret; shown once",
          (201, obj.WebhookSecret), (401,)),
    Route("get", "/v1/webhooks/default", "Your default webhook URL (null: none)", (200, obj.WebhookDefaultUrl),
          (401,)),
    Route("put", "/v1/webhooks/default", "Set the URL that every job of yours naming no webhook_url posts its "
          "events to", (200, obj.WebhookDefaultUrl), (400, 401, 413), body=WebhookDefault),
    Route("delete", "/v1/webhooks/default", "Remove your default webhook URL", (200, obj.WebhookDefaultUrl), (401,)),
    Route("get", "/v1/storage/{token}", "Signed, expiring download from the local store", (200, None),
          errors=(404,), public=True),
)


def _ref(model: type) -> dict:
    return {"$ref": _REF.format(model=model.__name__)}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _request_body(body) -> dict:
    if body == "multipart":
        schema = {"type": "object", "required": ["file", "purpose"],
                  "properties": {"file": {"type": "string", "format": "binary"},
                                 "purpose": {"enum": ["fine-tune", "campaign", "gan-dataset", "batch"]}}}
        return {"required": True, "content": {"multipart/form-data": {"schema": schema}}}
    schema = {"type": "object"} if body == "object" else _ref(body)
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _error_codes(route: Route) -> list[int]:
    """The route's own errors, and those every route of its sort can answer: a bad cursor (400), a
    body too large (413) or not JSON (415), too many requests for the key (429), a job store out of
    reach (503)."""
    codes = set(route.errors)
    if "after" in route.query:
        codes.add(400)
    if route.body is not None:
        codes.update((400, 413) if route.body == "multipart" else (400, 413, 415))
    if not route.public:
        codes.update((429, 503))  # 503 with Retry-After: the job store is unreachable
    return sorted(codes)


def _operation(route: Route) -> dict:
    params = [{"name": p.strip("{}"), "in": "path", "required": True, "schema": {"type": "string"}}
              for p in route.path.split("/") if p.startswith("{")]
    params += [{"name": n, "in": "query", "schema": s} for n, s in route.query.items()]
    params += [{"name": n, "in": "header", "schema": {"type": "string"}, "description": d}
               for n, d in route.headers.items()]
    status, answer = route.ok
    responses = {str(status): _json(_ref(answer), "OK") if answer else _FILE}
    if route.stream is not None:
        responses[str(status)]["content"]["text/event-stream"] = {
            "schema": {"type": "string", "description": f"`data: {{{route.stream.__name__}}}` events, then "
                                                        "`data: [DONE]`"}}
    if route.redirect:
        responses["302"] = _PRESIGNED
    responses.update({str(code): {"$ref": "#/components/responses/Error"} for code in _error_codes(route)})
    if 503 in route.errors and answer is obj.Ready:
        responses["503"] = _json(_ref(obj.Ready), "Not ready")
    op = {"summary": route.summary, "operationId": f"{route.method}_{route.path}", "responses": responses}
    if params:
        op["parameters"] = params
    if route.body is not None:
        op["requestBody"] = _request_body(route.body)
    if route.public:
        op["security"] = []
    return op


def _components() -> dict:
    pairs = [(m, "validation") for m in _INPUTS] + [(m, "serialization") for m in _ANSWERS]
    _, top = models_json_schema(pairs, ref_template=_REF)
    schemas = top["$defs"]
    # `input` is the shape of the kind named in `kind`: one entry per submittable kind.
    kinds = submittable()
    envelope = schemas["JobCreate"]["properties"]
    envelope["kind"] = {"enum": sorted(kinds), "description": "; ".join(
        f"{k.name}: {k.summary}" for k in kinds.values())}
    envelope["input"] = {"anyOf": [_ref(k.input) for k in kinds.values()],
                         "description": "the kind's input: " + ", ".join(
                             f"{k.name} -> {k.input.__name__}" for k in kinds.values())}
    # Which input goes with which kind, said so a client (or a fuzzer) can tell: one variant per kind.
    envelope_schema = schemas["JobCreate"]
    schemas["JobCreate"] = {
        "title": "JobCreate", "description": envelope_schema["description"],
        "oneOf": [{**envelope_schema, "title": f"JobCreate ({k.name})",
                   "properties": {**envelope, "kind": {"const": k.name, "description": k.summary},
                                  "input": _ref(k.input)}} for k in kinds.values()],
    }
    return schemas


@lru_cache(maxsize=1)
def build_spec() -> dict:
    paths: dict[str, dict] = {}
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {"title": "AIGC job platform", "version": "1"},
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": _components(),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "responses": {"Error": _json(_ref(obj.Error), "Error")},
        },
    }
