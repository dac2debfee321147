"""A fine-tune survives kill -9 (a LoRA run resumes from its checkpoint) and duplicate delivery (one trainer)."""

from __future__ import annotations

import re
import time

from tests.harness import wait_for, watch_to_end
from tests.integration.test_finetune import HP, corpus_bytes


def _start_finetune(api, **hp) -> dict:
    upload = api.upload(corpus_bytes())
    assert upload.status_code == 201
    return api.submit({"base_model": "builtin:tiny-gpt2", "training_file": upload.json()["id"],
                       "suffix": "crash", "hyperparameters": {**HP, **hp}}, kind="text.finetune")


def test_kill_9_mid_lora_training_resumes_from_the_checkpoint(make_platform):
    p = make_platform("ft-crash")
    p.start_web()
    victim = p.start_worker()
    api = p.api(p.create_key("fran"))
    job = _start_finetune(api, max_steps=120, checkpoint_every=20, eval_every=20, learning_rate=2e-2,
                          lora={"r": 4, "alpha": 8})

    def past_a_checkpoint():
        j = api.get(f"/v1/jobs/{job['id']}").json()
        return j["checkpoint"] and j["checkpoint"]["step"] >= 20 and j["progress"]["completed"] > 25
    wait_for(past_a_checkpoint, 180, "training to pass its first checkpoint")
    killed_at = api.get(f"/v1/jobs/{job['id']}").json()["progress"]["completed"]
    victim.kill9()

    successor = p.start_worker()
    done, seen = watch_to_end(api, job["id"], 240)
    assert done["status"] == "succeeded", done["error"]
    assert done["attempts"] == 2
    out = done["output"]
    assert out["resumed_from_step"] >= 20 and out["steps"] == 120
    assert min(seen) >= killed_at  # the step counter never went backwards
    assert out["valid_loss"] < out["first_valid_loss"]
    # The resumed attempt redid the steps after its checkpoint; the curves have each point once.
    points = [(e["name"], e["step"]) for e in api.get(f"/v1/jobs/{job['id']}/events").json()["data"]
              if e["type"] == "metric"]
    assert points and len(points) == len(set(points)), sorted(points)
    assert {n for n, _ in points} == {"train_loss", "valid_loss"} and (("train_loss", 120) in points)

    # Exactly one final model, an adapter (one registry entry, one set of weights), and the last
    # three checkpoints as models of their own, without their training state.
    assert out["method"] == "lora" and out["lora"]["r"] == 4
    models = sorted(m["id"] for m in api.get("/v1/models").json()["data"] if m["id"].startswith("ft:"))
    assert models == sorted([out["model"]] + [f"{out['model']}:ckpt-step-{s}" for s in (80, 100, 120)])
    weights = [k for k in p.stored_keys("models/") if k.endswith(".safetensors")]
    assert weights == [f"artifacts/models/{job['id']}/e2/adapter_model.safetensors"]  # written by attempt 2
    kept = p.stored_keys(f"jobs/{job['id']}/checkpoints/")
    assert sorted({k.rsplit("/", 2)[-2].rsplit("-", 1)[-1] for k in kept}) == ["000080", "000100", "000120"]
    assert not any(k.endswith("training_state.pt") for k in kept)

    # The fine-tuned model generates on a worker process that never trained it.
    successor.stop()
    p.start_worker()
    gen = api.wait(api.submit({"model": out["model"], "prompt": "The ", "max_new_tokens": 20, "seed": 1})["id"])
    assert gen["status"] == "succeeded", gen["error"]


def test_duplicate_delivery_under_a_short_visibility_timeout_leaves_one_trainer(make_platform):
    p = make_platform("ft-dup")
    # Redis hands the running task to another worker after 5 s; the lease must turn it away.
    p.env["AIGC_VISIBILITY_TIMEOUT_S"] = "5"
    # The lease must outlive a heartbeat or two missed on a busy machine (it is renewed every
    # second): with the harness's 3 s, a slow beat let the duplicate claim a lapsed lease.
    p.env["AIGC_LEASE_TTL_S"] = "10"
    p.start_web()
    first = p.start_worker()
    api = p.api(p.create_key("gus"))
    # Far longer than the test waits, however fast the machine: the duplicate surely comes while
    # the first trainer runs, and the job is canceled once the duplicate has been turned away.
    job = _start_finetune(api, max_steps=100_000, checkpoint_every=400, eval_every=100_000)
    api.wait(job["id"], until=("running",), timeout_s=60)
    time.sleep(6)
    # A worker starting now finds the running task's message past its visibility timeout and
    # restores it on its first sweep (kombu only sweeps on every tenth tick after that).
    second = p.start_worker()
    # Worker log lines name the task "text.finetune {job id}" (workers/task_messages.py).
    received = rf"Task text\.finetune {job['id']}\[[0-9a-f-]+\] received"
    wait_for(lambda: len(re.findall(received, first.log_tail(10**7) + second.log_tail(10**7))) >= 2, 120,
             "the running task to be delivered a second time")
    # The duplicate found the lease held and waits for it to lapse (a retry): it never claims,
    # and the first trainer goes on undisturbed.
    retried = rf"Task text\.finetune {job['id']}\[[0-9a-f-]+\] retry"
    wait_for(lambda: re.search(retried, second.log_tail(10**7)), 60, "the duplicate to be turned away")
    at = api.get(f"/v1/jobs/{job['id']}").json()["progress"]["completed"]
    wait_for(lambda: api.get(f"/v1/jobs/{job['id']}").json()["progress"]["completed"] > at + 5, 60,
             "the first trainer to go on")
    api.post(f"/v1/jobs/{job['id']}/cancel")
    done = api.wait(job["id"], timeout_s=120)
    assert done["status"] == "canceled", done["error"]
    assert done["attempts"] == 1  # only one delivery ever claimed the job
    events = api.get(f"/v1/jobs/{job['id']}/events").json()["data"]
    statuses = [e["status"] for e in events if e["type"] == "status"]
    assert statuses[:2] == ["queued", "running"] and statuses[-1] == "canceled" and "running" not in statuses[2:]
    assert not any("resumed" in e.get("message", "") for e in events)


def test_sigterm_hands_a_running_fine_tune_over_without_losing_a_step(make_platform):
    """SIGTERM to a worker (what Kubernetes and compose send) makes its fine-tune checkpoint at the
    next step, give its lease back and queue again; the worker exits long before the training
    would have ended, and another worker resumes from that very step."""
    import os
    import signal

    p = make_platform("ft-handover")
    p.start_web()
    leaving = p.start_worker()
    api = p.api(p.create_key("hana"))
    # Long enough that a worker running it on would be far from done when it exits (about 20 steps
    # a second here), short enough that the successor's share stays quick: it runs to the end.
    job = _start_finetune(api, max_steps=400, checkpoint_every=400, eval_every=400)
    wait_for(lambda: (api.get(f"/v1/jobs/{job['id']}").json()["progress"] or {}).get("completed", 0) >= 10, 180,
             "training to be under way", interval_s=0.1)
    before = api.get(f"/v1/jobs/{job['id']}").json()["progress"]["completed"]
    sent = time.monotonic()
    os.kill(leaving.proc.pid, signal.SIGTERM)  # the main process only, as a container runtime does
    leaving.proc.wait(60)
    print(f"the worker exited {time.monotonic() - sent:.1f} s after SIGTERM")
    at_exit = api.get(f"/v1/jobs/{job['id']}").json()
    assert at_exit["progress"]["completed"] < 200, "the worker ran the training on instead of handing over"
    events = api.get(f"/v1/jobs/{job['id']}/events").json()["data"]
    handed = [e["message"] for e in events if e["type"] == "log" and "handing over" in e["message"]]
    assert handed, [e for e in events if e["type"] == "log"]
    step = int(re.search(r"checkpoint at step (\d+)", handed[0]).group(1))
    assert step >= before and at_exit["checkpoint"]["step"] == step

    p.start_worker()
    done = api.wait(job["id"], timeout_s=600)
    assert done["status"] == "succeeded", done["error"]
    assert done["output"]["resumed_from_step"] == step  # not one step lost, none redone
    assert done["attempts"] == 1  # a hand-over is no failed attempt
