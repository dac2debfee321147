"""Per-caller limits: requests per minute per key, streams open per key, open jobs per owner; a 429
with Retry-After beyond each, and nothing recorded for a refused request."""

from __future__ import annotations

import pytest

from core.config import Settings
from core.keys import KeyStore, key_digest
from web import create_app


@pytest.fixture
def limited(tmp_path, redis_server, redis_client):
    settings = Settings.from_env({
        "AIGC_DATA_DIR": str(tmp_path / "data"), "AIGC_MODELS_DIR": str(tmp_path / "models"),
        "AIGC_SECRET_KEY": "unit-test-secret-key-0123456789", "AIGC_REDIS_URL": redis_server.url,
        "AIGC_RATE_LIMIT_PER_MINUTE": "8", "AIGC_MAX_STREAMS_PER_KEY": "2", "AIGC_MAX_OPEN_JOBS": "3"})
    app = create_app(settings, {"TESTING": True})
    yield app
    app.extensions["aigc_redis"].close()


def _auth(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


JOB = {"kind": "text.generate", "input": {"model": "builtin:tiny-gpt2", "prompt": "hi", "max_new_tokens": 2}}


def test_requests_past_the_minute_limit_are_429_with_retry_after(limited, redis_client, monkeypatch):
    import web.limits

    clock = [60 * 29_000_000 + 45.5]  # 45.5 s into a minute, held still: the window cannot roll over
    monkeypatch.setattr(web.limits.time, "time", lambda: clock[0])
    client = limited.test_client()
    mine, other = KeyStore(redis_client).create("ann"), KeyStore(redis_client).create("ben")
    codes = [client.get("/v1/jobs", headers=_auth(mine)).status_code for _ in range(8)]
    assert codes == [200] * 8
    refused = client.get("/v1/jobs", headers=_auth(mine))
    assert refused.status_code == 429 and refused.get_json()["error"]["code"] == "rate_limit_exceeded"
    assert refused.headers["Retry-After"] == "15"  # the seconds left in the minute
    assert client.get("/v1/jobs", headers=_auth(other)).status_code == 200  # per key
    clock[0] += 15  # the next minute: a fresh count
    assert client.get("/v1/jobs", headers=_auth(mine)).status_code == 200


def test_open_jobs_past_the_limit_are_refused_until_one_ends(limited, redis_client):
    client = limited.test_client()
    key = KeyStore(redis_client).create("cat")
    jobs = [client.post("/v1/jobs", json=JOB, headers=_auth(key)) for _ in range(3)]
    assert [j.status_code for j in jobs] == [202] * 3  # no worker: they stay queued
    refused = client.post("/v1/jobs", json=JOB, headers=_auth(key))
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "10"
    assert "3 jobs queued or running" in refused.get_json()["error"]["message"]
    assert redis_client.zcard("aigc:owner:cat:jobs") == 3  # nothing recorded for the refusal
    assert client.post(f"/v1/jobs/{jobs[0].get_json()['id']}/cancel", headers=_auth(key)).status_code == 200
    assert client.post("/v1/jobs", json=JOB, headers=_auth(key)).status_code == 202  # the cancel freed one


def test_streams_past_the_limit_are_refused_before_a_job_exists_and_slots_come_back(limited, redis_client):
    client = limited.test_client()
    key = KeyStore(redis_client).create("dan")
    body = {"model": "builtin:tiny-gpt2", "prompt": "hi", "max_tokens": 2, "stream": True}
    open_streams = [client.post("/v1/completions", json=body, headers=_auth(key), buffered=False)
                    for _ in range(2)]
    assert [s.status_code for s in open_streams] == [200, 200]
    assert open_streams[0].mimetype == "text/event-stream"
    refused = client.post("/v1/completions", json=body, headers=_auth(key))
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "5"
    assert redis_client.zcard("aigc:owner:dan:jobs") == 2  # the refused stream created no job
    open_streams[0].close()  # the caller leaves before a token: its slot is free again
    again = client.post("/v1/completions", json=body, headers=_auth(key), buffered=False)
    assert again.status_code == 200
    again.close()
    open_streams[1].close()
    assert redis_client.zcard(f"aigc:streams:{key_digest(key)[:24]}") == 0  # every slot given back


def test_a_stream_slot_of_a_dead_web_process_lapses(limited, redis_client):
    from web.limits import StreamSlot

    with limited.app_context():
        a, b = StreamSlot("k1").acquire(), StreamSlot("k1").acquire()
        with pytest.raises(Exception) as caught:
            StreamSlot("k1").acquire()
        assert caught.value.status == 429
        # A process that died never released b: once its lease lapses the slot is free.
        redis_client.zadd(b.key, {b.member: 1.0})
        c = StreamSlot("k1").acquire()
        assert redis_client.zcard(a.key) == 2
        a.release()
        c.release()
        assert redis_client.zcard(a.key) == 0
