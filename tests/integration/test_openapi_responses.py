"""Real responses of every route, held to the OpenAPI document the server itself serves (openapi-core)."""

from __future__ import annotations

import json

import pytest
import requests

from web.openapi import ROUTES

openapi_core = pytest.importorskip("openapi_core")
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse  # noqa: E402

CSV = b"product,audience\nthermos,hikers\nlamp,students\n"


@pytest.fixture(scope="module")
def checker(platform):
    spec = openapi_core.OpenAPI.from_dict(requests.get(platform.web_url + "/v1/openapi.json", timeout=30).json())
    seen: set[tuple[str, str]] = set()

    def check(resp: requests.Response, route: str) -> requests.Response:
        """Validate one response against its operation; `route` is "METHOD /path/{param}"."""
        spec.validate_response(RequestsOpenAPIRequest(resp.request), RequestsOpenAPIResponse(resp))
        method, path = route.split(" ", 1)
        seen.add((method.lower(), path))
        return resp

    check.seen = seen
    return check


def _batch_file(api) -> str:
    lines = [{"custom_id": f"r{i}", "method": "POST", "url": "/v1/completions",
              "body": {"model": "builtin:tiny-gpt2", "prompt": f"Ad {i}:", "max_tokens": 3}} for i in range(2)]
    data = "".join(json.dumps(line) + "\n" for line in lines).encode()
    return api.upload(data, purpose="batch", filename="batch.jsonl").json()["id"]


def test_every_route_answers_as_the_spec_says(platform, checker):
    api = platform.api(platform.create_key("spec-user"))
    anon = platform.api(None)
    c = checker

    c(anon.get("/healthz"), "GET /healthz")
    c(anon.get("/readyz"), "GET /readyz")
    c(anon.get("/v1/openapi.json"), "GET /v1/openapi.json")
    c(anon.get("/v1/jobs"), "GET /v1/jobs")  # 401
    c(api.post("/v1/webhooks/secret"), "POST /v1/webhooks/secret")
    c(api.get("/v1/webhooks/default"), "GET /v1/webhooks/default")
    c(api.put("/v1/webhooks/default", json={"url": "ftp://example.com/hook"}), "PUT /v1/webhooks/default")  # 400
    c(api.delete("/v1/webhooks/default"), "DELETE /v1/webhooks/default")

    # Jobs: a 400 with every error, a real job, its events, cancel, list.
    bad = c(api.post("/v1/jobs", json={"kind": "text.generate", "input": {"prompt": "", "n": 0}}), "POST /v1/jobs")
    assert bad.status_code == 400 and len(bad.json()["error"]["errors"]) == 3
    job = c(api.post("/v1/jobs", json={"kind": "text.generate", "input": {
        "model": "builtin:tiny-gpt2", "prompt": "Hi", "max_new_tokens": 3}}), "POST /v1/jobs").json()
    api.wait(job["id"])
    c(api.get(f"/v1/jobs/{job['id']}"), "GET /v1/jobs/{job_id}")
    c(api.get(f"/v1/jobs/{job['id']}/events"), "GET /v1/jobs/{job_id}/events")
    c(api.post(f"/v1/jobs/{job['id']}/cancel"), "POST /v1/jobs/{job_id}/cancel")
    c(api.get("/v1/jobs", params={"limit": 5}), "GET /v1/jobs")
    c(api.get("/v1/jobs", params={"limit": 0}), "GET /v1/jobs")  # 400

    # Models: the list; another owner's or unknown model is a 404 in the error shape.
    c(api.get("/v1/models"), "GET /v1/models")
    c(api.get("/v1/models/ft:nobody:x:1"), "GET /v1/models/{model_id}")
    c(api.delete("/v1/models/ft:nobody:x:1"), "DELETE /v1/models/{model_id}")

    # Files.
    up = c(api.upload(CSV, purpose="campaign", filename="rows.csv"), "POST /v1/files")
    file_id = up.json()["id"]
    c(api.get("/v1/files"), "GET /v1/files")
    c(api.get(f"/v1/files/{file_id}"), "GET /v1/files/{file_id}")
    c(api.get(f"/v1/files/{file_id}/content"), "GET /v1/files/{file_id}/content")

    # Campaigns: one to the end (artifacts), one canceled.
    body = {"input_file": file_id, "template": "Ad for {product} for {audience}:", "model": "builtin:tiny-gpt2",
            "generation": {"max_new_tokens": 3}}
    camp = c(api.post("/v1/campaigns", json=body), "POST /v1/campaigns").json()
    api.wait(camp["id"], timeout_s=180)
    c(api.get(f"/v1/campaigns/{camp['id']}"), "GET /v1/campaigns/{campaign_id}")
    c(api.get("/v1/campaigns"), "GET /v1/campaigns")
    c(api.get(f"/v1/campaigns/{camp['id']}/artifacts/output.jsonl", allow_redirects=False),
      "GET /v1/campaigns/{campaign_id}/artifacts/{name}")
    c(api.get(f"/v1/jobs/{camp['id']}/artifacts/output.csv", allow_redirects=False),
      "GET /v1/jobs/{job_id}/artifacts/{name}")
    c(api.post(f"/v1/campaigns/{camp['id']}/cancel"), "POST /v1/campaigns/{campaign_id}/cancel")
    c(api.delete(f"/v1/files/{file_id}"), "DELETE /v1/files/{file_id}")

    # OpenAI-compatible routes.
    c(api.post("/v1/completions", json={"model": "builtin:tiny-gpt2", "prompt": "Hi", "max_tokens": 2}),
      "POST /v1/completions")
    chat = c(api.post("/v1/chat/completions", json={"model": "builtin:tiny-gpt2", "max_tokens": 2,
                                                    "messages": [{"role": "user", "content": "Hi"}]}),
             "POST /v1/chat/completions")
    assert chat.json()["object"] == "chat.completion"
    refused = c(api.post("/v1/chat/completions", json={"model": "builtin:tiny-gpt2", "tools": [{"type": "function"}],
                                                       "messages": [{"role": "user", "content": "Hi"}]}),
                "POST /v1/chat/completions")
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "tools"
    batch = c(api.post("/v1/batches", json={"input_file_id": _batch_file(api), "endpoint": "/v1/completions",
                                             "completion_window": "24h"}), "POST /v1/batches").json()
    c(api.get(f"/v1/batches/{batch['id']}"), "GET /v1/batches/{batch_id}")
    c(api.get("/v1/batches"), "GET /v1/batches")
    c(api.post(f"/v1/batches/{batch['id']}/cancel"), "POST /v1/batches/{batch_id}/cancel")

    # OpenAI's fine-tuning API: a job paused while queued, resumed, then cancelled.
    lines = b"\n".join(b'{"text": "Fresh tea, calm mornings."}' for _ in range(10))
    train = c(api.upload(lines, purpose="fine-tune"), "POST /v1/files").json()["id"]
    c(api.post("/v1/fine_tuning/jobs", json={"model": "builtin:tiny-gpt2", "training_file": train,
                                             "hyperparameters": {"n_epochs": 0}}), "POST /v1/fine_tuning/jobs")  # 400
    ft = c(api.post("/v1/fine_tuning/jobs", json={"model": "builtin:tiny-gpt2", "training_file": train,
                                                  "hyperparameters": {"n_epochs": "auto", "max_steps": 100_000}}),
           "POST /v1/fine_tuning/jobs").json()
    c(api.post(f"/v1/fine_tuning/jobs/{ft['id']}/pause"), "POST /v1/fine_tuning/jobs/{job_id}/pause")
    c(api.post(f"/v1/fine_tuning/jobs/{ft['id']}/resume"), "POST /v1/fine_tuning/jobs/{job_id}/resume")
    c(api.get(f"/v1/fine_tuning/jobs/{ft['id']}"), "GET /v1/fine_tuning/jobs/{job_id}")
    c(api.get("/v1/fine_tuning/jobs", params={"limit": 2}), "GET /v1/fine_tuning/jobs")
    c(api.get(f"/v1/fine_tuning/jobs/{ft['id']}/events"), "GET /v1/fine_tuning/jobs/{job_id}/events")
    c(api.get(f"/v1/fine_tuning/jobs/{ft['id']}/checkpoints"), "GET /v1/fine_tuning/jobs/{job_id}/checkpoints")
    c(api.post(f"/v1/fine_tuning/jobs/{ft['id']}/cancel"), "POST /v1/fine_tuning/jobs/{job_id}/cancel")

    # Images: a tiny conditional model (so GET /v1/models shows its `image` info), then OpenAI's route.
    gan = api.post("/v1/jobs", json={"kind": "gan.train", "input": {
        "dataset": "builtin:digits", "conditional": True, "nz": 8, "ngf": 4, "ndf": 4, "batch_size": 32,
        "max_images": 64, "epochs": 1}}).json()
    trained = api.wait(gan["id"], timeout_s=120)
    assert trained["status"] == "succeeded", trained["error"]
    c(api.get("/v1/models"), "GET /v1/models")
    images = c(api.post("/v1/images/generations", json={"model": trained["output"]["model"], "prompt": "7",
                                                        "n": 2, "response_format": "b64_json"}),
               "POST /v1/images/generations")
    assert images.status_code == 200 and images.json()["data"][0]["revised_prompt"] == "7"
    no_class = c(api.post("/v1/images/generations", json={"model": trained["output"]["model"], "prompt": "a cat"}),
                 "POST /v1/images/generations")
    assert no_class.status_code == 400 and no_class.json()["error"]["param"] == "prompt"

    # The signed local-store link: this platform stores in S3, so it is a 404 in the error shape.
    c(anon.get("/v1/storage/not-a-token"), "GET /v1/storage/{token}")

    missing = {(r.method, r.path) for r in ROUTES} - c.seen
    assert not missing, f"routes this test never called: {sorted(missing)}"


def test_a_response_that_breaks_the_spec_is_caught(platform, checker):
    """The check itself can fail: a health answer with an undeclared status is refused."""
    resp = requests.get(platform.web_url + "/healthz", timeout=30)
    resp._content = json.dumps({"status": "sleeping"}).encode()
    with pytest.raises(Exception):
        checker(resp, "GET /healthz")
