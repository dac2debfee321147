"""Continuous batching through the whole platform: a request joins the running batch and leaves it when done, with its own settings and its own seed's text."""

from __future__ import annotations

from tests.harness import wait_for

LONG = {"model": "slow-gpt2", "prompt": "a long reply", "max_new_tokens": 1000, "seed": 3}


def test_a_short_request_joins_the_running_batch_and_leaves_it_first(platform, alice):
    long = alice.submit(LONG)
    wait_for(lambda: (alice.get(f"/v1/jobs/{long['id']}").json()["progress"]["completed"] or 0) > 0, 120,
             "the long job to start writing")
    # Other settings than the long job's (a static batch would have needed the same ones), a chat:
    # it joins the running batch at the next step and is done hundreds of steps before the long one.
    short = alice.submit({"model": "slow-gpt2", "messages": [{"role": "user", "content": "hi"}],
                          "max_new_tokens": 4, "temperature": 0.7, "top_p": 0.9, "seed": 5}, kind="text.chat")
    short_done = alice.wait(short["id"])
    long_done = alice.wait(long["id"], timeout_s=300)
    assert short_done["status"] == long_done["status"] == "succeeded"
    assert short_done["finished_at"] < long_done["finished_at"]
    assert short_done["started_at"] < long_done["finished_at"]
    assert short_done["output"]["usage"]["completion_tokens"] <= 4
    assert long_done["output"]["usage"]["completion_tokens"] == 1000


def test_the_same_seed_gives_the_same_text_alone_or_in_a_busy_batch(platform, alice):
    mine = {"model": "slow-gpt2", "prompt": "Fresh coffee", "max_new_tokens": 12, "temperature": 0.9, "seed": 11}
    alone = alice.wait(alice.submit(mine)["id"])
    long = alice.submit(LONG)
    wait_for(lambda: (alice.get(f"/v1/jobs/{long['id']}").json()["progress"]["completed"] or 0) > 0, 120,
             "the long job to start writing")
    crowded = alice.wait(alice.submit(mine)["id"])
    assert alice.get(f"/v1/jobs/{long['id']}").json()["status"] in ("running", "succeeded")
    assert crowded["output"]["choices"] == alone["output"]["choices"]
    alice.post(f"/v1/jobs/{long['id']}/cancel")
    assert alice.wait(long["id"])["status"] in ("canceled", "succeeded")
