"""Jobs survive a worker killed with SIGKILL and a Redis restart: nothing lost, nothing run twice."""

from __future__ import annotations

import time

from core.campaigns import CHUNK_ROWS
from tests.harness import http_ok, wait_for

SLOW = {"model": "slow-gpt2", "prompt": "Once", "max_new_tokens": 700, "n": 4, "seed": 5}
QUICK = {"model": "builtin:tiny-gpt2", "prompt": "hello", "max_new_tokens": 8, "seed": 2}


def test_kill_9_mid_generation_redelivers_and_succeeds_once(make_platform):
    p = make_platform("crash")
    p.start_web()
    victim = p.start_worker()
    api = p.api(p.create_key("dora"))
    job = api.submit(SLOW)

    def mid_run():
        j = api.get(f"/v1/jobs/{job['id']}").json()
        return j["status"] == "running" and j["progress"]["completed"] >= 20
    wait_for(mid_run, 90, "the job to be generating")
    victim.kill9()
    assert api.get(f"/v1/jobs/{job['id']}").json()["status"] == "running"

    p.start_worker()  # the successor: its reaper sees the lapsed lease and re-enqueues the job
    done = api.wait(job["id"], timeout_s=240)
    assert done["status"] == "succeeded", done["error"]
    assert done["attempts"] == 2
    assert len(done["output"]["choices"]) == 4

    events = api.get(f"/v1/jobs/{job['id']}/events").json()["data"]
    statuses = [e["status"] for e in events if e["type"] == "status"]
    assert statuses == ["queued", "running", "running", "succeeded"]
    assert [e["attempt"] for e in events if e.get("status") == "running"] == [1, 2]
    # One set of final artifacts at deterministic keys (job.json is written just after the terminal write).
    keys = [f"artifacts/jobs/{job['id']}/artifacts/output.json", f"artifacts/jobs/{job['id']}/job.json"]
    wait_for(lambda: p.stored_keys(f"jobs/{job['id']}/") == keys, 30, f"{keys} and nothing else in storage")

    # Redis still holds the dead attempt's unacked message; when it comes back it must change nothing.
    time.sleep(2)
    assert api.get(f"/v1/jobs/{job['id']}").json()["finished_at"] == done["finished_at"]


def test_kill_9_mid_batch_recovers_every_job_once(make_platform):
    p = make_platform("batch-crash")
    p.start_web()
    api = p.api(p.create_key("gus"))
    # Submitted before any worker runs: the four wait in one batch list and are claimed together.
    batch = {**SLOW, "max_new_tokens": 300, "n": 2}
    ids = [api.submit({**batch, "seed": seed})["id"] for seed in range(4)]
    victim = p.start_worker()

    def all_generating():
        jobs = [api.get(f"/v1/jobs/{job_id}").json() for job_id in ids]
        return all(j["status"] == "running" and j["progress"]["completed"] >= 10 for j in jobs) and jobs
    running = wait_for(all_generating, 120, "the batch to be generating")
    assert len({j["started_at"] for j in running}) == 1
    victim.kill9()

    p.start_worker()  # its reaper re-enqueues each job whose lease lapsed
    for job_id in ids:
        done = api.wait(job_id, timeout_s=300)
        assert done["status"] == "succeeded", done["error"]
        assert done["attempts"] == 2 and len(done["output"]["choices"]) == 2
        keys = [f"artifacts/jobs/{job_id}/artifacts/output.json", f"artifacts/jobs/{job_id}/job.json"]
        wait_for(lambda: p.stored_keys(f"jobs/{job_id}/") == keys, 30, f"{keys} and nothing else in storage")


def test_redis_restart_with_jobs_queued_loses_none(make_platform):
    p = make_platform("redis-restart")
    p.start_web()
    api = p.api(p.create_key("erin"))
    # No worker yet: the jobs wait in Redis's queue.
    ids = [api.submit({**QUICK, "seed": i})["id"] for i in range(4)]
    p.redis.restart()  # SIGTERM: Redis flushes its AOF and exits; the same dir and port come back

    worker = p.start_worker()
    for job_id in ids:
        assert api.wait(job_id, timeout_s=120)["status"] == "succeeded"

    # A worker that was connected through a restart keeps consuming (celery #1789).
    p.redis.restart()
    wait_for(lambda: http_ok(p.web_url + "/readyz"), 60,
             "the worker to announce itself again after the restart")
    late = api.submit({**QUICK, "seed": 100})
    assert api.wait(late["id"], timeout_s=120)["status"] == "succeeded"
    assert worker.alive()
    for job_id in ids:
        assert api.get(f"/v1/jobs/{job_id}").json()["attempts"] == 1


def test_kill_9_mid_campaign_gives_every_row_exactly_once(make_platform):
    p = make_platform("campaign-crash")
    p.start_web()
    victim = p.start_worker()
    api = p.api(p.create_key("hank"))
    rows = [{"product": f"p{i}", "audience": "a"} for i in range(CHUNK_ROWS * 3)]
    resp = api.post("/v1/campaigns", json={"rows": rows, "template": "Ad for {product}, {audience}:",
                                           "model": "slow-gpt2", "generation": {"max_new_tokens": 12, "seed": 1}})
    cid = resp.json()["id"]
    wait_for(lambda: api.get(f"/v1/campaigns/{cid}").json()["request_counts"]["completed"] >= CHUNK_ROWS, 120,
             "a first chunk to finish")
    victim.kill9()  # mid-way through a later chunk
    p.start_worker()
    done = wait_for(lambda: (c := api.get(f"/v1/campaigns/{cid}").json())["status"] == "succeeded" and c,
                    240, "the campaign to finish on the new worker")
    assert done["request_counts"] == {"total": len(rows), "completed": len(rows), "failed": 0}
    from tests.integration.test_campaigns import artifact, jsonl

    lines = jsonl(artifact(api, done, "output.jsonl"))
    assert [o["row"] for o in lines] == list(range(len(rows)))
