"""GET /metrics: Prometheus text that the official parser reads, and counters that move as jobs run."""

from __future__ import annotations

import openai
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.harness import wait_for


def scrape(platform) -> dict[tuple, float]:
    """{(sample name, sorted labels): value} of one scrape."""
    resp = requests.get(platform.web_url + "/metrics", timeout=30)
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(resp.text) for s in family.samples}


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_counters_histograms_and_gauges_move_as_jobs_run(platform):
    before = scrape(platform)
    key = platform.create_key("metrics-user")
    api = platform.api(key)
    job = api.submit({"model": "builtin:tiny-gpt2", "prompt": "Metrics", "max_new_tokens": 6, "seed": 1})
    client = openai.OpenAI(base_url=platform.web_url + "/v1", api_key=key, max_retries=0,
                           _strict_response_validation=True)
    stream = client.chat.completions.create(model="builtin:tiny-gpt2", max_tokens=6, seed=2, stream=True,
                                            messages=[{"role": "user", "content": "Stream"}])
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert api.wait(job["id"])["status"] == "succeeded"
    # A worker records its figures just after the terminal write a caller can see: scrape until the
    # last of them have landed (a bounded wait), then check each.
    def landed():
        s = scrape(platform)
        moved = all(value(s, name, **labels) > value(before, name, **labels) for name, labels in (
            ("aigc_time_to_first_token_seconds_count", {"kind": "text.chat"}),
            ("aigc_job_duration_seconds_count", {"kind": "text.generate", "status": "succeeded"})))
        return moved and s
    after = wait_for(landed, 30, "the workers' figures to reach /metrics")

    def grew(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    for kind in ("text.generate", "text.chat"):
        assert grew("aigc_jobs_submitted_total", kind=kind) >= 1
        assert grew("aigc_jobs_finished_total", kind=kind, status="succeeded") >= 1
        assert grew("aigc_job_duration_seconds_count", kind=kind, status="succeeded") >= 1
        assert grew("aigc_job_duration_seconds_bucket", kind=kind, status="succeeded", le="+Inf") >= 1
        assert grew("aigc_job_queue_wait_seconds_count", kind=kind) >= 1
        assert grew("aigc_tokens_generated_total", kind=kind) >= 1
    assert grew("aigc_time_to_first_token_seconds_count", kind="text.chat") >= 1  # the streamed one
    assert grew("aigc_model_cache_lookups_total", result="hit") + grew("aigc_model_cache_lookups_total",
                                                                      result="miss") >= 1
    assert value(after, "aigc_workers", queue="inference") >= 1
    for queue in ("inference", "training", "default"):
        assert ("aigc_queue_messages", (("queue", queue),)) in after
    assert ("aigc_streams_active", ()) in after and ("aigc_jobs_running", ()) in after
    # Buckets are cumulative: each is at least the one before it.
    buckets = sorted(((float(dict(labels)["le"]), v) for (name, labels), v in after.items()
                      if name == "aigc_job_duration_seconds_bucket"
                      and dict(labels).get("kind") == "text.generate" and dict(labels).get("status") == "succeeded"))
    assert [v for _, v in buckets] == sorted(v for _, v in buckets)
