"""OpenAI's fine-tuning API with the official client in strict mode: chat data, LoRA, pause and resume, events, checkpoints."""

from __future__ import annotations

import io
import json

import openai
import pytest

from tests.harness import wait_for
from tests.integration.test_chat import strict_client

BASE = "builtin:tiny-gpt2"
PRODUCTS = ["green tea", "running shoes", "a desk lamp", "a travel mug", "wool socks", "a phone case",
            "dark coffee", "a yoga mat", "a rain jacket", "a water bottle", "hiking boots", "a notebook"]


def chat_file(n: int = 24) -> bytes:
    lines = []
    for i in range(n):
        product = PRODUCTS[i % len(PRODUCTS)]
        lines.append({"messages": [
            {"role": "system", "content": "You write short ads."},
            {"role": "user", "content": f"Write an ad for {product}."},
            {"role": "assistant", "content": f"Meet {product}: made to last, priced to please. Order today!"}]})
    return "\n".join(json.dumps(x) for x in lines).encode()


def upload(client, data: bytes, name: str = "train.jsonl"):
    return client.files.create(file=(name, io.BytesIO(data)), purpose="fine-tune")


@pytest.fixture(scope="module")
def client(platform, alice):
    return strict_client(platform, alice.key, timeout=120)


@pytest.fixture(scope="module")
def training_file(client):
    return upload(client, chat_file())


def _hp(**kw) -> dict:
    # OpenAI's three, and the platform's own settings beside them (a LoRA adapter, a short run).
    return {"n_epochs": 1, "batch_size": 4, "learning_rate_multiplier": 20, "max_steps": 30, "block_size": 64,
            "checkpoint_every": 10, "eval_every": 10, "warmup_steps": 2, "lora": {"r": 4, "alpha": 16}, **kw}


def _wait_status(client, job_id: str, statuses: tuple[str, ...], timeout_s: float = 180):
    found = {}

    def reached():
        found["job"] = client.fine_tuning.jobs.retrieve(job_id)
        return found["job"].status in statuses
    wait_for(reached, timeout_s, f"fine-tuning job {job_id} to be {statuses}", interval_s=0.3)
    return found["job"]


def test_lifecycle_with_pause_resume_events_checkpoints_and_the_model(platform, alice, bob, client, training_file):
    job = client.fine_tuning.jobs.create(
        model=BASE, training_file=training_file.id, suffix="ads", seed=3, metadata={"team": "growth"},
        method={"type": "supervised", "supervised": {"hyperparameters": _hp(max_steps=400, checkpoint_every=20)}})
    assert job.id.startswith("ftjob-") and job.status == "queued" and job.model == BASE
    assert job.hyperparameters.n_epochs == 1 and job.hyperparameters.batch_size == 4
    assert job.hyperparameters.learning_rate_multiplier == pytest.approx(20)
    assert job.seed == 3 and job.metadata == {"team": "growth"} and job.fine_tuned_model is None

    # Pause once past a checkpoint: the worker checkpoints, lets go, and the job waits holding nothing.
    wait_for(lambda: (alice.get(f"/v1/jobs/{job.id}").json()["checkpoint"] or {}).get("step", 0) >= 20, 120,
             "a first checkpoint")
    client.fine_tuning.jobs.pause(job.id)
    wait_for(lambda: alice.get(f"/v1/jobs/{job.id}").json()["status"] == "paused", 60, "the pause to be taken")
    paused = client.fine_tuning.jobs.retrieve(job.id)
    assert paused.status == "queued" and paused.model_extra["paused"] is True
    step = alice.get(f"/v1/jobs/{job.id}").json()["checkpoint"]["step"]
    assert any(e.message == f"Fine-tuning job paused at step {step}"
               for e in client.fine_tuning.jobs.list_events(job.id, limit=100).data)

    resumed = client.fine_tuning.jobs.resume(job.id)
    assert resumed.model_extra["paused"] is False
    done = _wait_status(client, job.id, ("succeeded", "failed", "cancelled"), 240)
    assert done.status == "succeeded", done.error
    record = alice.get(f"/v1/jobs/{job.id}").json()
    assert record["output"]["resumed_from_step"] == step and record["attempts"] == 2
    assert done.trained_tokens == 400 * 4 * 64 and done.finished_at >= done.created_at
    model = done.fine_tuned_model
    assert model == f"ft:{BASE}:ads:{job.id[-8:]}"

    events = client.fine_tuning.jobs.list_events(job.id, limit=1000).data
    assert events[0].message == "The job has successfully completed"  # newest first
    assert events[-1].message == "Created fine-tuning job"
    metrics = [e for e in events if e.type == "metrics"]
    assert metrics and all(isinstance(e.data["step"], int) for e in metrics)
    assert {k for e in metrics for k in e.data} == {"step", "train_loss", "valid_loss"}
    page = client.fine_tuning.jobs.list_events(job.id, limit=3)
    assert len(page.data) == 3 and page.has_more
    assert client.fine_tuning.jobs.list_events(job.id, limit=3, after=page.data[-1].id).data[0].id == events[3].id

    checkpoints = client.fine_tuning.jobs.checkpoints.list(job.id).data
    assert [c.step_number for c in checkpoints] == [400, 380, 360]
    assert checkpoints[0].fine_tuned_model_checkpoint == f"{model}:ckpt-step-400"
    assert {"step", "train_loss", "valid_loss"} <= set(checkpoints[0].metrics.model_dump(exclude_none=True))

    results = client.files.content(done.result_files[0]).text.splitlines()
    assert results[0] == "step,train_loss,valid_loss" and len(results) > 10

    # The adapter and its checkpoints are models at once, answering the chat route.
    listed = {m.id for m in client.models.list().data}
    assert {model, checkpoints[1].fine_tuned_model_checkpoint} <= listed
    stored = platform.stored_keys(f"models/{job.id}/")
    assert [k.rsplit("/", 1)[-1] for k in stored if k.endswith(".safetensors")] == ["adapter_model.safetensors"]
    for name in (model, checkpoints[1].fine_tuned_model_checkpoint):
        reply = client.chat.completions.create(model=name, max_tokens=12, seed=1, temperature=0,
                                               messages=[{"role": "user", "content": "Write an ad for green tea."}])
        assert reply.model == name and reply.choices[0].message.content

    # Another owner sees none of it.
    other = strict_client(platform, bob.key)
    for call in (lambda: other.fine_tuning.jobs.retrieve(job.id),
                 lambda: other.fine_tuning.jobs.checkpoints.list(job.id),
                 lambda: other.fine_tuning.jobs.list_events(job.id),
                 lambda: other.models.retrieve(model),
                 lambda: other.models.retrieve(checkpoints[0].fine_tuned_model_checkpoint)):
        with pytest.raises(openai.NotFoundError):
            call()
    assert job.id not in [j.id for j in other.fine_tuning.jobs.list().data]
    with pytest.raises(openai.APIStatusError) as exc:
        other.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
    assert exc.value.status_code in (400, 404)


def test_cancel_and_list(client, training_file):
    job = client.fine_tuning.jobs.create(model=BASE, training_file=training_file.id,
                                         hyperparameters=_hp(max_steps=100_000))
    _wait_status(client, job.id, ("running",), 120)
    client.fine_tuning.jobs.cancel(job.id)
    done = _wait_status(client, job.id, ("cancelled", "failed", "succeeded"), 60)
    assert done.status == "cancelled" and done.fine_tuned_model is None
    listed = client.fine_tuning.jobs.list(limit=1)
    assert len(listed.data) == 1 and listed.data[0].id == job.id and listed.has_more
    with pytest.raises(openai.BadRequestError):
        client.fine_tuning.jobs.resume(job.id)


@pytest.mark.parametrize("bad,name", [
    ({"messages": "hello"}, "missing_messages_list"),
    ({"messages": [{"role": "user", "content": "x", "tone": "warm"}, {"role": "assistant", "content": "y"}]},
     "message_unrecognized_key"),
    ({"messages": [{"role": "robot", "content": "x"}, {"role": "assistant", "content": "y"}]}, "unrecognized_role"),
    ({"messages": [{"role": "user", "content": ""}, {"role": "assistant", "content": "y"}]}, "missing_content"),
    ({"messages": [{"role": "user", "content": "x"}]}, "example_missing_assistant_message"),
])
def test_each_data_problem_is_refused_at_upload_by_its_name(client, bad, name):
    data = chat_file(12) + b"\n" + json.dumps(bad).encode()
    with pytest.raises(openai.BadRequestError) as exc:
        upload(client, data)
    error = exc.value.body
    assert error["code"] == name and error["param"] == "file" and error["message"].startswith(f"line 13: {name}")


def test_too_few_examples_and_too_many_tokens(client):
    with pytest.raises(openai.BadRequestError) as exc:
        upload(client, chat_file(9))
    assert exc.value.body["code"] == "too_few_examples"
    # Too long for the model's context: known only with its tokenizer, so the job fails naming the line.
    long = {"messages": [{"role": "user", "content": "ad " * 1500}, {"role": "assistant", "content": "ok"}]}
    too_long = upload(client, chat_file(11) + b"\n" + json.dumps(long).encode())
    job = client.fine_tuning.jobs.create(model=BASE, training_file=too_long.id, hyperparameters=_hp())
    done = _wait_status(client, job.id, ("failed", "succeeded"), 120)
    assert done.status == "failed" and done.error.code == "too_many_tokens"
    assert done.error.param == "training_file" and done.error.message.startswith("line 12:")


def test_bad_requests_name_the_field_as_sent(client, training_file):
    with pytest.raises(openai.BadRequestError) as exc:
        client.fine_tuning.jobs.create(model=BASE, training_file=training_file.id, hyperparameters={"n_epochs": 0})
    assert exc.value.body["param"] == "hyperparameters.n_epochs"
    with pytest.raises(openai.BadRequestError) as exc:
        client.fine_tuning.jobs.create(model=BASE, training_file="file_nope")
    assert exc.value.body["param"] == "training_file"
    with pytest.raises(openai.BadRequestError) as exc:
        client.fine_tuning.jobs.create(model=BASE, training_file=training_file.id, method={"type": "dpo"})
    assert exc.value.body["param"] == "method.type"
