"""Fine-tuning through real workers: files, training with checkpoints, the ft: model registry, cancel."""

from __future__ import annotations

import json

import pytest

from models.corpus import load_ad_copy

# Small enough to train in seconds on one CPU thread, big enough to show learning.
HP = {"max_steps": 30, "batch_size": 8, "block_size": 64, "learning_rate": 3e-3, "warmup_steps": 2,
      "eval_every": 10, "checkpoint_every": 10, "seed": 1}


def corpus_bytes(lines: int = 300) -> bytes:
    return "\n".join(json.dumps({"text": t}, ensure_ascii=False) for t in load_ad_copy()[:lines]).encode()


@pytest.fixture(scope="module")
def training_file(alice):
    resp = alice.upload(corpus_bytes())
    assert resp.status_code == 201, resp.text
    return resp.json()


@pytest.mark.parametrize("data,purpose,param,fragment", [
    (b"\xff\xfe not utf-8", "fine-tune", "file", "UTF-8"),
    (b'{"text": "a"}\n{"text": "b"}\n{"txt": "c"}\n', "fine-tune", "file", "line 3"),
    (b'{"text": "a"}\nnot json\n', "fine-tune", "file", "line 2"),
    (b'{"prompt": "a", "completion": 5}\n', "fine-tune", "file", "line 1"),
    (b"   \n\n", "fine-tune", "file", "no text"),
    (b"hello", "", "purpose", "purpose"),
    (b"hello", "pictures", "purpose", "purpose"),
])
def test_bad_uploads_are_400_naming_the_problem(alice, data, purpose, param, fragment):
    before = len(alice.get("/v1/files").json()["data"])
    resp = alice.upload(data, purpose=purpose)
    assert resp.status_code == 400
    error = resp.json()["error"]
    assert error["param"] == param and fragment in error["message"]
    assert len(alice.get("/v1/files").json()["data"]) == before  # nothing stored


def test_upload_limits_and_formats(platform, alice):
    # Its own connection: gunicorn closes a connection whose request body it did not read.
    big = platform.api(alice.http.headers["Authorization"].split()[1]).upload(b"x" * (1100 << 10))
    assert big.status_code == 413 and big.json()["error"]["param"] == "file"
    text = "第一行广告\nsecond line\n" * 5  # ten examples, the least a fine-tune file may have
    plain = alice.upload(text.encode(), filename="ads.txt")
    assert plain.status_code == 201
    body = plain.json()
    assert body["purpose"] == "fine-tune" and body["bytes"] == len(text.encode())
    assert body["filename"] == "ads.txt" and body["id"].startswith("file_")
    assert alice.get(f"/v1/files/{body['id']}").json() == body
    assert alice.delete(f"/v1/files/{body['id']}").json()["deleted"] is True
    assert alice.get(f"/v1/files/{body['id']}").status_code == 404


def test_campaign_and_image_archive_uploads(alice):
    from tests.unit.test_file_checks import make_zip, png

    archive = alice.upload(make_zip({"cats/a.png": png(), "dogs/b.png": png()}), purpose="gan-dataset",
                           filename="pets.zip")
    assert archive.status_code == 201 and archive.json()["purpose"] == "gan-dataset"
    escaping = alice.upload(make_zip({"../../evil.png": png()}), purpose="gan-dataset")
    assert escaping.status_code == 400 and "escapes" in escaping.json()["error"]["message"]
    sheet = alice.upload("product,audience\n茶叶,学生\n".encode(), purpose="campaign", filename="c.csv")
    assert sheet.status_code == 201
    assert alice.upload(b"product,product\n1,2\n", purpose="campaign").status_code == 400
    listed = alice.get("/v1/files", params={"purpose": "gan-dataset"}).json()["data"]
    assert [f["id"] for f in listed] == [archive.json()["id"]]


def test_files_belong_to_their_owner(alice, bob, training_file):
    fid = training_file["id"]
    assert bob.get(f"/v1/files/{fid}").status_code == 404
    assert bob.delete(f"/v1/files/{fid}").status_code == 404
    assert fid not in [f["id"] for f in bob.get("/v1/files").json()["data"]]
    resp = bob.post("/v1/jobs", json={"kind": "text.finetune", "input": {
        "base_model": "builtin:tiny-gpt2", "training_file": fid}})
    assert resp.status_code == 400 and resp.json()["error"]["param"] == "input.training_file"


@pytest.mark.parametrize("change,param", [
    ({"base_model": "nope"}, "input.base_model"),
    ({"suffix": "Bad Suffix!"}, "input.suffix"),
    ({"hyperparameters": {"epochs": 0}}, "input.hyperparameters.epochs"),
    ({"hyperparameters": {"learning_rate": -1}}, "input.hyperparameters.learning_rate"),
    ({"hyperparameters": {"batch_size": 10_000}}, "input.hyperparameters.batch_size"),
    ({"hyperparameters": {"dropout": 0.1}}, "input.hyperparameters.dropout"),
    ({"validation_file": "file_missing"}, "input.validation_file"),
])
def test_bad_finetune_input_is_400(alice, training_file, change, param):
    body = {"base_model": "builtin:tiny-gpt2", "training_file": training_file["id"], **change}
    resp = alice.post("/v1/jobs", json={"kind": "text.finetune", "input": body})
    assert resp.status_code == 400 and resp.json()["error"]["param"] == param


def test_finetune_end_to_end_and_the_model_registry(platform, alice, bob, training_file):
    job = alice.submit({"base_model": "builtin:tiny-gpt2", "training_file": training_file["id"],
                        "suffix": "ads", "hyperparameters": HP}, kind="text.finetune")
    done = alice.wait(job["id"], timeout_s=180)
    assert done["status"] == "succeeded", done["error"]
    out = done["output"]
    assert out["model"] == f"ft:builtin:tiny-gpt2:ads:{job['id'][-8:]}"
    assert out["steps"] == 30 and out["resumed_from_step"] == 0
    assert out["valid_loss"] < out["first_valid_loss"] - 0.5  # it learned something
    assert done["progress"] == {"completed": 30, "total": 30, "unit": "steps", "eta_s": 0.0}

    events = alice.get(f"/v1/jobs/{job['id']}/events").json()["data"]
    metrics = [e for e in events if e["type"] == "metric"]
    train_steps = [e["step"] for e in metrics if e["name"] == "train_loss"]
    assert train_steps == sorted(train_steps) and train_steps[-1] == 30
    assert [e["step"] for e in metrics if e["name"] == "valid_loss"] == [0, 10, 20, 30]

    model_id = out["model"]
    mine = {m["id"]: m for m in alice.get("/v1/models").json()["data"]}
    assert mine[model_id]["kind"] == "text" and mine[model_id]["base"] == "builtin:tiny-gpt2"
    assert model_id not in [m["id"] for m in bob.get("/v1/models").json()["data"]]
    stored = platform.stored_keys(f"models/{job['id']}/")
    assert any(k.endswith("model.safetensors") for k in stored)
    assert not any(k.endswith(".bin") or k.endswith(".pt") for k in stored)  # no pickles

    gen = alice.wait(alice.submit({"model": model_id, "prompt": "The ", "max_new_tokens": 40,
                                   "temperature": 0.7, "seed": 3})["id"])
    assert gen["status"] == "succeeded" and gen["output"]["model"] == model_id
    resp = bob.post("/v1/jobs", json={"kind": "text.generate", "input": {"model": model_id, "prompt": "x"}})
    assert resp.status_code == 400 and resp.json()["error"]["param"] == "input.model"

    assert bob.get(f"/v1/models/{model_id}").status_code == 404
    assert alice.get(f"/v1/models/{model_id}").json()["id"] == model_id
    assert bob.delete(f"/v1/models/{model_id}").status_code == 404
    assert alice.delete(f"/v1/models/{model_id}").json()["deleted"] is True
    assert model_id not in [m["id"] for m in alice.get("/v1/models").json()["data"]]
    assert platform.stored_keys(f"models/{job['id']}/") == []
    resp = alice.post("/v1/jobs", json={"kind": "text.generate", "input": {"model": model_id, "prompt": "x"}})
    assert resp.status_code == 400


def test_cancel_stops_training_and_keeps_the_checkpoint(platform, alice, training_file):
    job = alice.submit({"base_model": "builtin:tiny-gpt2", "training_file": training_file["id"],
                        "hyperparameters": {**HP, "max_steps": 5000}}, kind="text.finetune")
    alice.wait(job["id"], until=("running",), timeout_s=60)

    def checkpointed():
        j = alice.get(f"/v1/jobs/{job['id']}").json()
        return j["checkpoint"] and j["checkpoint"]["step"] >= 10
    from tests.harness import wait_for

    wait_for(checkpointed, 120, "a first checkpoint")
    assert alice.post(f"/v1/jobs/{job['id']}/cancel").json()["status"] == "canceling"
    stopped = alice.wait(job["id"], timeout_s=15)
    assert stopped["status"] == "canceled"
    assert stopped["progress"]["completed"] < 5000
    step = stopped["checkpoint"]["step"]
    assert any(f"-step-{step:06d}/model.safetensors" in k
               for k in platform.stored_keys(f"jobs/{job['id']}/checkpoints/"))
