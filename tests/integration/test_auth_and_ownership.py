"""401 for missing, wrong and revoked keys; another owner's job is a 404 on every route."""

from __future__ import annotations

import pytest

from core.keys import KeyStore

PROMPT = {"model": "builtin:tiny-gpt2", "prompt": "hello", "max_new_tokens": 4, "seed": 1}


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Basic dXNlcjpwYXNz"},
    {"Authorization": "Bearer "},
    {"Authorization": "Bearer aigc_not-a-real-key"},
    {"Authorization": "Bearer not-even-the-prefix"},
])
@pytest.mark.parametrize("method,path", [("get", "/v1/jobs"), ("post", "/v1/jobs"), ("get", "/v1/models"),
                                         ("get", "/v1/jobs/job_x"), ("post", "/v1/jobs/job_x/cancel")])
def test_missing_or_wrong_key_is_401(platform, headers, method, path):
    resp = platform.api(None).http.request(method.upper(), platform.web_url + path, headers=headers,
                                           json={"kind": "text.generate", "input": PROMPT}, timeout=10)
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "unauthorized"


def test_revoked_key_is_401(platform):
    key = platform.create_key("temp-user")
    api = platform.api(key)
    assert api.get("/v1/jobs").status_code == 200
    KeyStore(platform.redis_client()).revoke("temp-user")
    resp = api.get("/v1/jobs")
    assert resp.status_code == 401 and "revoked" in resp.json()["error"]["message"]


def test_another_owners_job_is_404_everywhere(alice, bob):
    job = alice.wait(alice.submit(PROMPT)["id"])
    for method, path in [("get", f"/v1/jobs/{job['id']}"), ("post", f"/v1/jobs/{job['id']}/cancel"),
                         ("get", f"/v1/jobs/{job['id']}/events"),
                         ("get", f"/v1/jobs/{job['id']}/artifacts/output.json")]:
        resp = getattr(bob, method)(path, allow_redirects=False)
        assert resp.status_code == 404, (path, resp.status_code)
        assert resp.json()["error"]["code"] == "not_found"
    assert job["id"] not in [j["id"] for j in bob.get("/v1/jobs", params={"limit": 100}).json()["data"]]
    # Bob's cancel did nothing to Alice's job.
    assert alice.get(f"/v1/jobs/{job['id']}").json()["status"] == "succeeded"


def test_unknown_job_and_artifact_are_404(alice):
    assert alice.get("/v1/jobs/job_doesnotexist").status_code == 404
    job = alice.wait(alice.submit(PROMPT)["id"])
    assert alice.get(f"/v1/jobs/{job['id']}/artifacts/../../etc/passwd").status_code == 404
    assert alice.get(f"/v1/jobs/{job['id']}/artifacts/nothing.bin").status_code == 404


def test_keys_are_stored_hashed(platform):
    key = platform.create_key("hash-check")
    r = platform.redis_client()
    for name in r.scan_iter("aigc:apikey*"):
        values = r.hgetall(name) if r.type(name) == "hash" else {"v": r.get(name)}
        assert all(key not in str(v) for v in values.values())
