"""The official `openai` package against the platform: files, batches and completions."""

from __future__ import annotations

import json

import pytest

from core.campaigns import CHUNK_ROWS
from tests.harness import wait_for

openai = pytest.importorskip("openai")


@pytest.fixture(scope="module")
def client(platform):
    return openai.OpenAI(base_url=platform.web_url + "/v1", api_key=platform.create_key("openai-user"),
                         max_retries=0, timeout=60, _strict_response_validation=True)


def test_batch_round_trip(client, tmp_path):
    lines = [{"custom_id": f"req-{i}", "method": "POST", "url": "/v1/completions",
              "body": {"model": "builtin:tiny-gpt2", "prompt": f"Ad {i}:", "max_tokens": 5, "seed": i}}
             for i in range(5)]
    lines.append({"custom_id": "too-long", "method": "POST", "url": "/v1/completions",
                  "body": {"model": "builtin:tiny-gpt2", "prompt": "x" * 1100, "max_tokens": 5}})
    path = tmp_path / "batch.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    with path.open("rb") as fh:
        uploaded = client.files.create(file=fh, purpose="batch")
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/completions", completion_window="24h")
    assert batch.status in ("validating", "in_progress")

    done = wait_for(lambda: (b := client.batches.retrieve(batch.id)).status == "completed" and b, 180,
                    "the batch to complete", interval_s=0.5)
    assert done.request_counts.total == 6 and done.request_counts.completed == 5
    assert done.request_counts.failed == 1
    results = [json.loads(x) for x in client.files.content(done.output_file_id).text.split("\n") if x]
    assert [r["custom_id"] for r in results] == [f"req-{i}" for i in range(5)]
    body = results[0]["response"]["body"]
    assert results[0]["response"]["status_code"] == 200 and body["object"] == "text_completion"
    assert body["usage"]["completion_tokens"] <= 5 and body["choices"][0]["text"]
    [error] = [json.loads(x) for x in client.files.content(done.error_file_id).text.split("\n") if x]
    assert error["custom_id"] == "too-long" and error["error"]["code"] == "prompt_too_long"


def test_completions_create(client):
    resp = client.completions.create(model="builtin:tiny-gpt2", prompt="Fresh coffee", max_tokens=8,
                                     temperature=0.5, seed=3, n=2)
    assert resp.object == "text_completion" and len(resp.choices) == 2
    assert resp.usage.prompt_tokens == len("Fresh coffee") and resp.usage.completion_tokens <= 16
    again = client.completions.create(model="builtin:tiny-gpt2", prompt="Fresh coffee", max_tokens=8,
                                      temperature=0.5, seed=3, n=2)
    assert [c.text for c in again.choices] == [c.text for c in resp.choices]


def test_models_list_and_retrieve_in_openais_shape(client):
    models = {m.id: m for m in client.models.list()}
    assert models["builtin:tiny-gpt2"].object == "model" and models["builtin:tiny-gpt2"].owned_by == "aigc"
    assert models["slow-gpt2"].owned_by == "aigc"
    one = client.models.retrieve("builtin:tiny-gpt2")
    assert one.id == "builtin:tiny-gpt2" and isinstance(one.created, int)
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")


def test_errors_come_back_as_openai_errors(client):
    with pytest.raises(openai.BadRequestError) as exc:
        client.completions.create(model="builtin:tiny-gpt2", prompt="x", max_tokens=0)
    assert exc.value.body["param"] == "max_tokens"
    # More than the model's context leaves: refused at once, not after the job waited in the queue.
    with pytest.raises(openai.BadRequestError) as exc:
        client.chat.completions.create(model="builtin:ad-writer", max_completion_tokens=600,
                                       messages=[{"role": "user", "content": "an ad for tea"}])
    assert exc.value.body["param"] == "max_completion_tokens" and "context window" in exc.value.body["message"]
    with pytest.raises(openai.BadRequestError):
        client.completions.create(model="no-such-model", prompt="x")
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=str(client.base_url), api_key="aigc_wrong", max_retries=0).completions.create(
            model="builtin:tiny-gpt2", prompt="x")


def test_a_slow_completion_is_a_504_with_the_job_id(make_platform):
    # A platform of its own whose web server waits one second for a completion, and no worker: the
    # job stays queued, so the 504 is certain. (It used to be a slow model's job on the shared worker
    # racing the one second, and holding that worker up for everyone else until canceled.)
    p = make_platform("impatient")
    p.env["AIGC_SYNC_TIMEOUT_S"] = "1"
    p.start_web()
    api = p.api(p.create_key("impatient"))
    resp = api.post("/v1/completions", json={"model": "builtin:tiny-gpt2", "prompt": "a", "max_tokens": 4}, timeout=60)
    assert resp.status_code == 504
    body = resp.json()["error"]
    assert body["code"] == "timeout"
    job = api.get(f"/v1/jobs/{body['job_id']}").json()
    assert job["kind"] == "text.generate" and job["status"] == "queued"
    assert api.post(f"/v1/jobs/{job['id']}/cancel").json()["status"] == "canceled"


def test_batch_cancel_keeps_what_is_done(make_platform, tmp_path):
    # A platform of its own: the slow chunks hold this worker, not the one every other test shares.
    p = make_platform("batch-cancel")
    p.start_web()
    p.start_worker()
    client = openai.OpenAI(base_url=p.web_url + "/v1", api_key=p.create_key("batch-canceller"), max_retries=0,
                           timeout=60, _strict_response_validation=True)
    lines = [{"custom_id": f"c-{i}", "method": "POST", "url": "/v1/completions",
              "body": {"model": "slow-gpt2", "prompt": f"Ad {i}:", "max_tokens": 24, "temperature": 0}}
             for i in range(CHUNK_ROWS * 6)]
    path = tmp_path / "many.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    with path.open("rb") as fh:
        uploaded = client.files.create(file=fh, purpose="batch")
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/completions", completion_window="24h")
    wait_for(lambda: client.batches.retrieve(batch.id).request_counts.completed >= CHUNK_ROWS, 120, "a first chunk")
    assert client.batches.cancel(batch.id).status in ("cancelling", "cancelled")
    done = wait_for(lambda: (b := client.batches.retrieve(batch.id)).status == "cancelled" and b, 120,
                    "the batch to stop", interval_s=0.5)
    results = [json.loads(x) for x in client.files.content(done.output_file_id).text.split("\n") if x]
    assert CHUNK_ROWS <= len(results) == done.request_counts.completed < len(lines)


def test_files_list_pages_and_the_client_stops_at_the_end(platform):
    """The client's auto-pagination follows has_more and `after`: it must end, in order, with every file."""
    import io

    client = openai.OpenAI(base_url=platform.web_url + "/v1", api_key=platform.create_key("pager"), max_retries=0,
                           timeout=60, _strict_response_validation=True)
    line = b'{"custom_id": "a", "method": "POST", "url": "/v1/completions", "body": {"model": "builtin:tiny-gpt2", "prompt": "hi"}}\n'
    made = [client.files.create(file=(f"b{i}.jsonl", io.BytesIO(line)), purpose="batch").id for i in range(3)]
    listed = [f.id for f in client.files.list(limit=2)]  # two pages, then has_more is false
    assert listed == made[::-1]
    first = client.files.list(limit=2, order="asc")
    assert [f.id for f in first.data] == made[:2] and first.has_more is True
    assert [f.id for f in client.files.list(after=made[1], order="asc").data] == made[2:]
    with pytest.raises(openai.NotFoundError):
        client.files.list(after="file_not_mine")
