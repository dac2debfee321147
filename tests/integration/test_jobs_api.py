"""Text generation over REST through real Redis, a real Celery worker, S3 (moto) and gunicorn."""

from __future__ import annotations

import contextlib
import json

import pytest
import requests

from tests.harness import wait_for

PROMPT = {"model": "builtin:tiny-gpt2", "prompt": "Fresh coffee beans for", "max_new_tokens": 24, "seed": 7}
SLOW = {"model": "slow-gpt2", "prompt": "a", "max_new_tokens": 900, "n": 4, "seed": 3}


@pytest.fixture(scope="module")
def own(make_module_platform):
    """A platform of this module's own, with no worker between tests: a test that needs jobs to wait
    in the queue submits them before it starts a worker (`worker_of`). These tests used to keep the
    shared worker busy with a slow job instead, so "still queued" was a race between the slow model
    and the test, and every other test waited behind it."""
    platform = make_module_platform("jobs-own-worker")
    platform.start_web()
    return platform, platform.api(platform.create_key("carol"))


@contextlib.contextmanager
def worker_of(platform):
    """A real worker serving every queue of `platform` for the block; stopped (and its announcement
    gone) after it, so the next test starts with none."""
    proc = platform.start_worker()
    try:
        yield proc
    finally:
        proc.stop()


def test_submit_poll_and_read_the_result(platform, alice):
    job = alice.submit(PROMPT)
    assert job["status"] in ("queued", "running")
    assert job["id"].startswith("job_") and len(job["id"]) >= 20
    # The bar's total is known from submission, while the job waits.
    assert job["progress"] == {"completed": 0, "total": 24, "unit": "tokens", "eta_s": None}

    done = alice.wait(job["id"])
    assert done["status"] == "succeeded", done["error"]
    out = done["output"]
    assert out["model"] == "builtin:tiny-gpt2"
    assert len(out["choices"]) == 1 and out["choices"][0]["finish_reason"] in ("length", "stop")
    assert out["choices"][0]["text"]
    assert out["usage"] == {"prompt_tokens": len(PROMPT["prompt"].encode()),
                            "completion_tokens": out["usage"]["completion_tokens"]}
    assert 0 < out["usage"]["completion_tokens"] <= 24
    assert done["progress"]["completed"] == done["progress"]["total"] == 24
    assert done["attempts"] == 1 and done["started_at"] and done["finished_at"]

    # The finished record is in storage too, enough to recover the result without Redis (written
    # just after the terminal write: a poll can see the job finished a moment before it lands).
    key = f"artifacts/jobs/{job['id']}/job.json"
    wait_for(lambda: key in platform.stored_keys(f"jobs/{job['id']}/"), 30, f"{key} in storage")
    stored = platform.s3_client().get_object(Bucket=platform.bucket, Key=key)
    record = json.loads(stored["Body"].read())
    assert record["status"] == "succeeded" and record["output"] == out

    # The artifact route redirects to a presigned S3 URL that serves the output.
    [artifact] = done["artifacts"]
    assert artifact["name"] == "output.json" and artifact["bytes"] > 0
    resp = alice.get(f"/v1/jobs/{job['id']}/artifacts/output.json", allow_redirects=False)
    assert resp.status_code == 302
    assert resp.headers["Location"].startswith(platform.s3.endpoint)
    assert json.loads(requests.get(resp.headers["Location"], timeout=10).content) == out


def test_same_seed_gives_the_same_text(alice):
    a, b, c = (alice.submit({**PROMPT, "seed": seed, "n": 2}) for seed in (11, 11, 12))
    texts = [[ch["text"] for ch in alice.wait(j["id"])["output"]["choices"]] for j in (a, b, c)]
    assert texts[0] == texts[1]
    assert texts[0] != texts[2]
    assert texts[0][0] != texts[0][1]  # two samples of one request differ


def test_idempotency_key_returns_the_same_job(alice):
    body = {"kind": "text.generate", "input": PROMPT}
    first = alice.post("/v1/jobs", json=body, headers={"Idempotency-Key": "order-42"})
    again = alice.post("/v1/jobs", json=body, headers={"Idempotency-Key": "order-42"})
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"]
    assert again.headers.get("Idempotent-Replayed") == "true"
    other = alice.post("/v1/jobs", json={**body, "input": {**PROMPT, "seed": 99}},
                       headers={"Idempotency-Key": "order-42"})
    assert other.status_code == 409
    assert other.json()["error"]["param"] == "Idempotency-Key"


def test_list_pages_with_a_cursor_and_filters(platform):
    carol = platform.api(platform.create_key("carol"))
    ids = [carol.submit(PROMPT)["id"] for _ in range(3)]
    for job_id in ids:
        carol.wait(job_id)
    page1 = carol.get("/v1/jobs", params={"limit": 2}).json()
    assert [j["id"] for j in page1["data"]] == ids[::-1][:2]
    assert page1["has_more"] is True
    page2 = carol.get("/v1/jobs", params={"limit": 2, "after": page1["next_cursor"]}).json()
    assert [j["id"] for j in page2["data"]] == [ids[0]] and page2["has_more"] is False
    assert len(carol.get("/v1/jobs", params={"status": "succeeded"}).json()["data"]) == 3
    assert carol.get("/v1/jobs", params={"status": "failed"}).json()["data"] == []
    assert carol.get("/v1/jobs", params={"status": "done"}).json()["error"]["param"] == "status"


def test_events_record_the_life_of_a_job(alice):
    job = alice.wait(alice.submit(PROMPT)["id"])
    events = alice.get(f"/v1/jobs/{job['id']}/events").json()["data"]
    statuses = [e["status"] for e in events if e["type"] == "status"]
    assert statuses == ["queued", "running", "succeeded"]
    assert [e["seq"] for e in events] == list(range(len(events)))
    assert any(e["type"] == "progress" for e in events)
    later = alice.get(f"/v1/jobs/{job['id']}/events", params={"after": events[-2]["seq"]}).json()
    assert [e["seq"] for e in later["data"]] == [events[-1]["seq"]]


def test_models_lists_builtin_and_local_models(alice):
    models = {m["id"]: m for m in alice.get("/v1/models").json()["data"]}
    assert models["builtin:tiny-gpt2"]["kind"] == "text"
    assert models["slow-gpt2"]["source"] == "local"


def test_a_local_model_directory_generates(alice):
    job = alice.wait(alice.submit({"model": "slow-gpt2", "prompt": "hi", "max_new_tokens": 5, "seed": 1})["id"])
    assert job["status"] == "succeeded" and job["output"]["model"] == "slow-gpt2"


def test_prompt_too_long_for_the_model_fails_naming_the_field(alice):
    job = alice.wait(alice.submit({**PROMPT, "prompt": "x" * 1000, "max_new_tokens": 100})["id"])
    assert job["status"] == "failed"
    assert job["error"]["param"] == "input.prompt" and "context" in job["error"]["message"]


def test_health_and_readiness(platform):
    assert requests.get(platform.web_url + "/healthz", timeout=5).json() == {"status": "ok"}
    ready = requests.get(platform.web_url + "/readyz", timeout=5)
    assert ready.status_code == 200
    assert ready.json()["checks"]["workers"] >= 1


def test_cancel_a_queued_job_never_runs_it_and_a_running_one_stops(own):
    platform, api = own
    # No worker yet: the job is queued, however fast or slow this machine is.
    queued = api.submit(PROMPT)
    assert api.get(f"/v1/jobs/{queued['id']}").json()["status"] == "queued"
    canceled = api.post(f"/v1/jobs/{queued['id']}/cancel").json()
    assert canceled["status"] == "canceled"

    slow = api.submit(SLOW)
    with worker_of(platform):
        # The queued job's message reaches the worker first, and it must leave the job alone. Then
        # the slow one: cancel it once it is seen running (3,600 token steps leave it running far
        # longer than one request takes).
        api.wait(slow["id"], until=("running",), timeout_s=60)
        resp = api.post(f"/v1/jobs/{slow['id']}/cancel").json()
        assert resp["status"] in ("canceling", "canceled")
        stopped = api.wait(slow["id"], timeout_s=30)
        assert stopped["status"] == "canceled"
        assert stopped["progress"]["completed"] < 900

        # One worker process takes messages in order: once a later job is done, the canceled
        # job's message has been through it.
        follow_up = api.wait(api.submit(PROMPT)["id"])
        assert follow_up["status"] == "succeeded"
    after = api.get(f"/v1/jobs/{queued['id']}").json()
    assert after["status"] == "canceled" and after["attempts"] == 0 and after["output"] is None
    events = api.get(f"/v1/jobs/{queued['id']}/events").json()["data"]
    assert [e["status"] for e in events if e["type"] == "status"] == ["queued", "canceled"]


def test_queued_jobs_with_the_same_settings_run_as_one_batch_each_with_its_own_result(own):
    platform, api = own
    # Submitted while no worker runs, the burst waits in one batch list; the worker started after
    # it claims all four in one step.
    settings = {"model": "builtin:tiny-gpt2", "max_new_tokens": 12, "temperature": 0.8, "n": 2}
    prompts = ["Fresh coffee for", "a", "Quiet kettles for readers who brew at night", "x" * 1100]
    burst = [api.submit({**settings, "prompt": p, "seed": 40 + i}) for i, p in enumerate(prompts)]
    assert all(api.get(f"/v1/jobs/{j['id']}").json()["status"] == "queued" for j in burst)
    with worker_of(platform):
        done = [api.wait(j["id"]) for j in burst]
        # Each job's text is what the same job gives alone: its seed, not its batchmates, decides it.
        alone = api.wait(api.submit({**settings, "prompt": prompts[2], "seed": 42})["id"])

    *ok, too_long = done
    assert len({j["started_at"] for j in done}) == 1  # claimed together
    assert all(j["status"] == "succeeded" and j["attempts"] == 1 for j in ok), [j["error"] for j in ok]
    assert all(j["progress"]["completed"] == j["progress"]["total"] == 12 for j in ok)
    # One prompt too long for the model fails its own job only, naming the field.
    assert too_long["status"] == "failed" and too_long["error"]["param"] == "input.prompt"
    assert alone["started_at"] != ok[2]["started_at"]
    assert alone["output"]["choices"] == ok[2]["output"]["choices"]
    assert ok[0]["output"]["choices"] != ok[1]["output"]["choices"]


def test_a_queued_job_knows_its_place_in_line(make_platform):
    p = make_platform("jobs-in-line")
    p.start_web()
    alice, bob = p.api(p.create_key("alice")), p.api(p.create_key("bob"))
    quick = {"model": "builtin:tiny-gpt2", "max_new_tokens": 2}
    # No worker yet: every job waits, in submission order across owners; each queue has its own line.
    first = alice.submit({**quick, "prompt": "one"})
    second = bob.submit({**quick, "prompt": "two"})
    third = alice.submit({**quick, "prompt": "three", "temperature": 0.5})
    trainer = alice.submit({"dataset": "builtin:digits", "nz": 8, "ngf": 4, "ndf": 4, "batch_size": 32,
                            "max_images": 64, "epochs": 1}, kind="gan.train")
    place = lambda api, job: api.get(f"/v1/jobs/{job['id']}").json()["queue_position"]  # noqa: E731
    assert [place(alice, first), place(bob, second), place(alice, third)] == [1, 2, 3]
    assert place(alice, trainer) == 1  # the training queue's line
    assert first["queue_position"] == 1  # the submission's answer says it too
    alice.post(f"/v1/jobs/{first['id']}/cancel")
    assert [place(bob, second), place(alice, third)] == [1, 2]
    p.start_worker()
    for api, job in ((bob, second), (alice, third), (alice, trainer)):
        done = api.wait(job["id"], timeout_s=120)
        assert done["status"] == "succeeded" and done["queue_position"] is None
    assert p.redis_client().zcard("aigc:line:inference") == 0 and p.redis_client().zcard("aigc:line:training") == 0
