"""The OpenAPI 3.1 description of the API; tests/unit/test_openapi.py keeps it true to the routes."""

from __future__ import annotations

from core.jobs import STATUSES
from core.schemas import JOB_KINDS

_ERR = {"$ref": "#/components/responses/Error"}
_AUTH_ERRORS = {"401": _ERR, "404": _ERR}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str = "OK") -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _path_param(name: str) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


_TEXT_GENERATE_INPUT = {
    "type": "object",
    "required": ["model", "prompt"],
    "additionalProperties": False,
    "properties": {
        "model": {"type": "string", "description": "builtin:tiny-gpt2, a directory under AIGC_MODELS_DIR, "
                                                   "or a cached Hugging Face id"},
        "prompt": {"type": "string", "minLength": 1},
        "max_new_tokens": {"type": "integer", "minimum": 1, "default": 64},
        "temperature": {"type": "number", "minimum": 0, "maximum": 2, "default": 1.0,
                        "description": "0 means greedy decoding"},
        "top_p": {"type": "number", "exclusiveMinimum": 0, "maximum": 1, "default": 1.0},
        "top_k": {"type": "integer", "minimum": 0, "default": 0, "description": "0 disables top-k"},
        "n": {"type": "integer", "minimum": 1, "default": 1},
        "seed": {"type": ["integer", "null"], "minimum": 0, "description": "same seed, same text"},
        "stop": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "maxItems": 4}]},
    },
}

_SCHEMAS = {
    "Error": {
        "type": "object",
        "properties": {"error": {"type": "object", "properties": {
            "code": {"type": "string"}, "message": {"type": "string"},
            "param": {"type": ["string", "null"], "description": "the offending field, e.g. input.max_new_tokens"},
        }}},
    },
    "Progress": {"type": "object", "properties": {
        "completed": {"type": "integer"}, "total": {"type": ["integer", "null"]},
        "unit": {"type": ["string", "null"]}, "eta_s": {"type": ["number", "null"]}}},
    "Artifact": {"type": "object", "properties": {
        "name": {"type": "string"}, "bytes": {"type": "integer"}, "content_type": {"type": "string"},
        "url": {"type": "string"}}},
    "Job": {
        "type": "object",
        "properties": {
            "object": {"const": "job"},
            "id": {"type": "string"},
            "kind": {"enum": sorted(JOB_KINDS)},
            "status": {"enum": list(STATUSES)},
            "input": {"type": "object"},
            "output": {"type": ["object", "null"]},
            "error": {"type": ["object", "null"]},
            "progress": _ref("Progress"),
            "checkpoint": {"type": ["object", "null"], "description": "{step} of the last committed checkpoint"},
            "artifacts": {"type": "array", "items": _ref("Artifact")},
            "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
            "attempts": {"type": "integer"},
            "cancel_requested": {"type": "boolean"},
            "created_at": {"type": "string", "format": "date-time"},
            "started_at": {"type": ["string", "null"], "format": "date-time"},
            "finished_at": {"type": ["string", "null"], "format": "date-time"},
        },
    },
    "JobCreate": {
        "type": "object",
        "required": ["kind", "input"],
        "properties": {"kind": {"enum": sorted(JOB_KINDS)},
                       "input": {"oneOf": [_ref("TextGenerateInput"), _ref("TextFinetuneInput")]},
                       "metadata": {"type": "object", "additionalProperties": {"type": "string"}}},
    },
    "TextGenerateInput": _TEXT_GENERATE_INPUT,
    "TextFinetuneInput": {
        "type": "object", "required": ["base_model", "training_file"], "additionalProperties": False,
        "properties": {
            "base_model": {"type": "string", "description": "any text model, including an earlier ft: model"},
            "training_file": {"type": "string", "description": "a file with purpose fine-tune"},
            "validation_file": {"type": ["string", "null"], "description": "else a held-out 10% slice"},
            "suffix": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,39}$", "default": "custom"},
            "hyperparameters": {"type": "object", "additionalProperties": False, "properties": {
                "epochs": {"type": "integer", "default": 3}, "max_steps": {"type": ["integer", "null"]},
                "batch_size": {"type": "integer", "default": 8},
                "learning_rate": {"type": "number", "default": 5e-4},
                "block_size": {"type": "integer", "default": 128},
                "warmup_steps": {"type": "integer", "default": 10}, "seed": {"type": "integer", "default": 0},
                "eval_every": {"type": "integer", "default": 50},
                "checkpoint_every": {"type": "integer", "default": 100}}},
        },
    },
    "TextFinetuneOutput": {"type": "object", "properties": {
        "model": {"type": "string", "description": "ft:{base}:{suffix}:{short id}"},
        "train_loss": {"type": "number"}, "valid_loss": {"type": "number"},
        "first_valid_loss": {"type": "number"}, "steps": {"type": "integer"},
        "resumed_from_step": {"type": "integer"}}},
    "CampaignCreate": {"type": "object", "required": ["template", "model"], "properties": {
        "input_file": {"type": "string", "description": "a file with purpose campaign (CSV or JSONL)"},
        "rows": {"type": "array", "items": {"type": "object"}, "description": "inline rows instead"},
        "template": {"type": "string", "description": "{column} placeholders"},
        "model": {"type": "string"}, "n": {"type": "integer", "default": 1},
        "id_column": {"type": "string"},
        "generation": {"type": "object", "properties": {
            "max_new_tokens": {"type": "integer"}, "temperature": {"type": "number"}, "top_p": {"type": "number"},
            "top_k": {"type": "integer"}, "seed": {"type": "integer"}, "stop": {"type": "array"}}}}},
    "Campaign": {"type": "object", "properties": {
        "id": {"type": "string"}, "object": {"const": "campaign"}, "status": {"enum": list(STATUSES)},
        "request_counts": {"type": "object", "properties": {
            "total": {"type": "integer"}, "completed": {"type": "integer"}, "failed": {"type": "integer"}}},
        "progress": _ref("Progress"), "artifacts": {"type": "array", "items": _ref("Artifact")}}},
    "File": {"type": "object", "properties": {
        "object": {"const": "file"}, "id": {"type": "string"}, "filename": {"type": "string"},
        "bytes": {"type": "integer"}, "purpose": {"type": "string"},
        "created_at": {"type": "string", "format": "date-time"}}},
    "Model": {"type": "object", "properties": {
        "id": {"type": "string"}, "kind": {"enum": ["text", "gan"]}, "source": {"type": "string"},
        "base": {"type": "string"}, "job_id": {"type": "string"}}},
    "TextGenerateOutput": {"type": "object", "properties": {
        "model": {"type": "string"},
        "choices": {"type": "array", "items": {"type": "object", "properties": {
            "index": {"type": "integer"}, "text": {"type": "string"},
            "finish_reason": {"enum": ["stop", "length"]}}}},
        "usage": {"type": "object", "properties": {
            "prompt_tokens": {"type": "integer"}, "completion_tokens": {"type": "integer"}}},
        "seed": {"type": "integer"}}},
}

_PATHS = {
    "/healthz": {"get": {"summary": "The process is up", "security": [],
                         "responses": {"200": _json({"type": "object"})}}},
    "/readyz": {"get": {"summary": "Redis, storage and a worker are reachable", "security": [],
                        "responses": {"200": _json({"type": "object"}), "503": _json({"type": "object"}, "Not ready")}}},
    "/v1/openapi.json": {"get": {"summary": "This document", "security": [],
                                 "responses": {"200": _json({"type": "object"})}}},
    "/v1/jobs": {
        "post": {
            "summary": "Queue a job",
            "parameters": [{"name": "Idempotency-Key", "in": "header", "schema": {"type": "string"},
                            "description": "the same key and body return the same job"}],
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("JobCreate")}}},
            "responses": {"202": _json(_ref("Job"), "Queued"), "400": _ERR, "401": _ERR, "409": _ERR,
                          "413": _ERR, "503": _ERR},
        },
        "get": {
            "summary": "My jobs, newest first (cursor pagination)",
            "parameters": [
                {"name": "kind", "in": "query", "schema": {"enum": sorted(JOB_KINDS)}},
                {"name": "status", "in": "query", "schema": {"enum": list(STATUSES)}},
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
                {"name": "after", "in": "query", "schema": {"type": "string"}, "description": "next_cursor"},
            ],
            "responses": {"200": _json({"type": "object", "properties": {
                "data": {"type": "array", "items": _ref("Job")}, "has_more": {"type": "boolean"},
                "next_cursor": {"type": ["string", "null"]}}}), "400": _ERR, "401": _ERR},
        },
    },
    "/v1/jobs/{job_id}": {"get": {"summary": "One job", "parameters": [_path_param("job_id")],
                                  "responses": {"200": _json(_ref("Job")), **_AUTH_ERRORS}}},
    "/v1/jobs/{job_id}/cancel": {"post": {"summary": "Cancel a job", "parameters": [_path_param("job_id")],
                                          "responses": {"200": _json(_ref("Job")), **_AUTH_ERRORS}}},
    "/v1/jobs/{job_id}/events": {"get": {
        "summary": "Status changes, progress, metrics and logs after a sequence number",
        "parameters": [_path_param("job_id"), {"name": "after", "in": "query", "schema": {"type": "integer"}}],
        "responses": {"200": _json({"type": "object"}), "400": _ERR, **_AUTH_ERRORS}}},
    "/v1/jobs/{job_id}/artifacts/{name}": {"get": {
        "summary": "Download an artifact (stream, or 302 to a presigned URL)",
        "parameters": [_path_param("job_id"), _path_param("name")],
        "responses": {"200": {"description": "The file"}, "302": {"description": "Presigned URL"},
                      **_AUTH_ERRORS}}},
    "/v1/models": {"get": {"summary": "Models I can use", "responses": {"200": _json({"type": "object"}),
                                                                          "401": _ERR}}},
    "/v1/models/{model_id}": {
        "get": {"summary": "One of my fine-tuned models", "parameters": [_path_param("model_id")],
                "responses": {"200": _json(_ref("Model")), **_AUTH_ERRORS}},
        "delete": {"summary": "Delete one of my fine-tuned models and its weights",
                   "parameters": [_path_param("model_id")],
                   "responses": {"200": _json({"type": "object"}), **_AUTH_ERRORS}},
    },
    "/v1/files": {
        "post": {
            "summary": "Upload a file (checked for its purpose)",
            "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                "type": "object", "required": ["file", "purpose"],
                "properties": {"file": {"type": "string", "format": "binary"},
                               "purpose": {"enum": ["fine-tune", "campaign", "gan-dataset", "batch"]}}}}}},
            "responses": {"201": _json(_ref("File"), "Stored"), "400": _ERR, "401": _ERR, "413": _ERR},
        },
        "get": {"summary": "My files", "parameters": [{"name": "purpose", "in": "query", "schema": {"type": "string"}}],
                "responses": {"200": _json({"type": "object", "properties": {
                    "data": {"type": "array", "items": _ref("File")}}}), "401": _ERR}},
    },
    "/v1/files/{file_id}": {
        "get": {"summary": "One file", "parameters": [_path_param("file_id")],
                "responses": {"200": _json(_ref("File")), **_AUTH_ERRORS}},
        "delete": {"summary": "Delete a file", "parameters": [_path_param("file_id")],
                   "responses": {"200": _json({"type": "object"}), **_AUTH_ERRORS}},
    },
    "/v1/files/{file_id}/content": {"get": {
        "summary": "A file's bytes (batch output and error files included)",
        "parameters": [_path_param("file_id")],
        "responses": {"200": {"description": "The file"}, **_AUTH_ERRORS}}},
    "/v1/campaigns": {
        "post": {"summary": "Start a campaign: rows (a campaign file or inline) and a template",
                 "requestBody": {"required": True,
                                 "content": {"application/json": {"schema": _ref("CampaignCreate")}}},
                 "responses": {"202": _json(_ref("Campaign"), "Queued"), "400": _ERR, "401": _ERR, "413": _ERR}},
        "get": {"summary": "My campaigns, newest first",
                "responses": {"200": _json({"type": "object"}), "401": _ERR}},
    },
    "/v1/campaigns/{campaign_id}": {"get": {
        "summary": "One campaign", "parameters": [_path_param("campaign_id")],
        "responses": {"200": _json(_ref("Campaign")), **_AUTH_ERRORS}}},
    "/v1/campaigns/{campaign_id}/cancel": {"post": {
        "summary": "Stop a campaign, keeping what is done", "parameters": [_path_param("campaign_id")],
        "responses": {"200": _json(_ref("Campaign")), **_AUTH_ERRORS}}},
    "/v1/campaigns/{campaign_id}/artifacts/{name}": {"get": {
        "summary": "output.jsonl, output.csv or errors.jsonl",
        "parameters": [_path_param("campaign_id"), _path_param("name")],
        "responses": {"200": {"description": "The file"}, "302": {"description": "Presigned URL"},
                      **_AUTH_ERRORS}}},
    "/v1/completions": {"post": {
        "summary": "OpenAI-compatible completion: queue, wait, answer (504 with the job id if slow)",
        "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}},
        "responses": {"200": _json({"type": "object"}), "400": _ERR, "401": _ERR, "504": _ERR}}},
    "/v1/batches": {
        "post": {"summary": "OpenAI-compatible batch of /v1/completions requests (a batch file)",
                 "requestBody": {"required": True, "content": {"application/json": {"schema": {
                     "type": "object", "required": ["input_file_id", "endpoint"],
                     "properties": {"input_file_id": {"type": "string"}, "endpoint": {"const": "/v1/completions"},
                                    "completion_window": {"type": "string"}, "metadata": {"type": "object"}}}}}},
                 "responses": {"200": _json({"type": "object"}), "400": _ERR, "401": _ERR}},
        "get": {"summary": "My batches", "responses": {"200": _json({"type": "object"}), "401": _ERR}},
    },
    "/v1/batches/{batch_id}": {"get": {
        "summary": "One batch", "parameters": [_path_param("batch_id")],
        "responses": {"200": _json({"type": "object"}), **_AUTH_ERRORS}}},
    "/v1/batches/{batch_id}/cancel": {"post": {
        "summary": "Cancel a batch", "parameters": [_path_param("batch_id")],
        "responses": {"200": _json({"type": "object"}), **_AUTH_ERRORS}}},
    "/v1/storage/{token}": {"get": {
        "summary": "Signed, expiring download from the local store", "security": [],
        "parameters": [_path_param("token")],
        "responses": {"200": {"description": "The file"}, "404": _ERR}}},
}


def build_spec() -> dict:
    return {
        "openapi": "3.1.0",
        "info": {"title": "AIGC job platform", "version": "1"},
        "security": [{"bearer": []}],
        "paths": _PATHS,
        "components": {
            "schemas": _SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "responses": {"Error": _json(_ref("Error"), "Error")},
        },
    }
