"""AIGC_LOG_FORMAT=json: a worker's log lines are JSON objects, and those about a job carry its id,
kind and owner."""

from __future__ import annotations

import json

from tests.harness import wait_for


def test_worker_lines_about_a_job_name_it(make_platform):
    p = make_platform("json-logs")
    p.start_web()
    worker = p.start_worker(AIGC_LOG_FORMAT="json")
    api = p.api(p.create_key("logan"))
    job = api.submit({"model": "builtin:tiny-gpt2", "prompt": "Log me", "max_new_tokens": 4, "seed": 1})
    assert api.wait(job["id"])["status"] == "succeeded"

    def lines():
        return [json.loads(line) for line in worker.log_path.read_text(errors="replace").splitlines()
                if line.startswith("{")]
    ended = wait_for(lambda: [x for x in lines() if x.get("message") == f"job {job['id']} succeeded"], 30,
                     "the worker to log the job's end")
    assert ended[0]["job_id"] == job["id"] and ended[0]["kind"] == "text.generate" and ended[0]["owner"]
    assert ended[0]["level"] == "INFO" and ended[0]["ts"].endswith("Z")
    about = [x for x in lines() if x.get("job_id") == job["id"]]
    assert any(x["message"].startswith("running 1 job(s)") for x in about)
    # Celery's own lines are JSON too, and say no job when they are about none.
    assert any("ready" in x["message"] and "job_id" not in x for x in lines())
