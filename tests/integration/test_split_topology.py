"""Production layout: the web server has no model volume; workers announce the models they hold."""

from __future__ import annotations

from tests.harness import wait_for


def test_web_accepts_models_only_the_workers_have(make_platform, tmp_path):
    p = make_platform("split")
    workers_models = p.env["AIGC_MODELS_DIR"]
    p.env["AIGC_MODELS_DIR"] = str(tmp_path / "empty")  # what the web server sees
    p.start_web()
    api = p.api(p.create_key("ivy"))
    resp = api.post("/v1/jobs", json={"kind": "text.generate", "input": {"model": "slow-gpt2", "prompt": "x"}})
    assert resp.status_code == 400  # no worker has announced it yet

    p.env["AIGC_MODELS_DIR"] = workers_models
    p.start_worker()
    wait_for(lambda: any(m["id"] == "slow-gpt2" for m in api.get("/v1/models").json()["data"]), 30,
             "the worker to announce its models")
    job = api.wait(api.submit({"model": "slow-gpt2", "prompt": "x", "max_new_tokens": 3})["id"])
    assert job["status"] == "succeeded"
