"""Webhooks: a job's events POSTed to a receiver on 127.0.0.1, signed so that the official openai
client's webhooks.unwrap accepts them; a failing receiver is tried again; private URLs refused."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import openai
import pytest

from tests.harness import wait_for


class Receiver(BaseHTTPRequestHandler):
    answers: list[int] = []  # statuses to give, in order; then 204
    got: list[tuple[dict, bytes]] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.got.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(Receiver.answers.pop(0) if Receiver.answers else 204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def receiver():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_port}/hook"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def hooked(make_module_platform):
    p = make_module_platform("webhooks")
    p.env["AIGC_WEBHOOK_ALLOW_PRIVATE"] = "true"  # the receiver is on 127.0.0.1
    p.env["AIGC_WEBHOOK_PROGRESS_EVERY_S"] = "0.5"  # progress events within a job of seconds
    p.start_web()
    p.start_worker()
    return p


def _events(got, job_id):
    return [json.loads(body) for _, body in got if json.loads(body)["data"]["id"] == job_id]


def test_events_arrive_signed_and_the_official_client_verifies_them(hooked, receiver):
    Receiver.got, Receiver.answers = [], []
    api = hooked.api(hooked.create_key("hooker"))
    body = {"kind": "text.generate", "input": {"model": "builtin:tiny-gpt2", "prompt": "Hook", "max_new_tokens": 4},
            "webhook_url": receiver}
    refused = api.post("/v1/jobs", json=body)
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "webhook_url"  # no secret yet
    made = api.post("/v1/webhooks/secret")
    assert made.status_code == 201
    secret = made.json()["secret"]
    assert secret.startswith("whsec_")

    job = api.post("/v1/jobs", json=body).json()
    assert job["webhook_url"] == receiver
    assert api.wait(job["id"])["status"] == "succeeded"
    events = wait_for(lambda: [e for e in _events(Receiver.got, job["id"]) if e["type"] == "job.succeeded"] and
                      _events(Receiver.got, job["id"]), 60, "the job.succeeded webhook")
    assert [e["type"] for e in events] == ["job.started", "job.succeeded"]
    assert events[-1]["data"]["status"] == "succeeded" and events[-1]["object"] == "event"

    client = openai.OpenAI(base_url=hooked.web_url + "/v1", api_key="unused")
    for headers, raw in Receiver.got:
        client.webhooks.verify_signature(raw, headers, secret=secret)
        event = client.webhooks.unwrap(raw, headers, secret=secret)
        assert event.type in ("job.started", "job.succeeded")
    with pytest.raises(openai.InvalidWebhookSignatureError):
        headers, raw = Receiver.got[-1]
        client.webhooks.verify_signature(raw.replace(b"succeeded", b"failed"), headers, secret=secret)
    # Each attempt is on the job's record.
    attempts = [e for e in api.get(f"/v1/jobs/{job['id']}/events").json()["data"] if e["type"] == "webhook"]
    assert sorted(a["event"] for a in attempts) == ["job.started", "job.succeeded"]
    assert all(a["delivered"] and a["status"] == 204 and a["attempt"] == 1 for a in attempts)


def test_a_failing_receiver_is_tried_again(hooked, receiver):
    Receiver.got, Receiver.answers = [], [500]  # the first delivery fails
    api = hooked.api(hooked.create_key("retrier"))
    assert api.post("/v1/webhooks/secret").status_code == 201
    job = api.post("/v1/jobs", json={"kind": "text.generate", "webhook_url": receiver, "input": {
        "model": "builtin:tiny-gpt2", "prompt": "Again", "max_new_tokens": 4}}).json()
    assert api.wait(job["id"])["status"] == "succeeded"

    def delivered_both():
        attempts = [e for e in api.get(f"/v1/jobs/{job['id']}/events").json()["data"] if e["type"] == "webhook"]
        return sum(a["delivered"] for a in attempts) == 2 and attempts
    attempts = wait_for(delivered_both, 60, "the failed delivery to be tried again")  # the first pause is 5 s
    failed = [a for a in attempts if not a["delivered"]]
    assert len(failed) == 1 and failed[0]["status"] == 500 and failed[0]["retrying"]
    again = [a for a in attempts if a["webhook_id"] == failed[0]["webhook_id"] and a["delivered"]]
    assert again and again[0]["attempt"] == 2  # the same event (same webhook-id), its second attempt


def test_progress_comes_throttled_and_a_job_canceled_in_the_queue_says_so(hooked, receiver):
    Receiver.got, Receiver.answers = [], []
    api = hooked.api(hooked.create_key("watcher"))
    assert api.post("/v1/webhooks/secret").status_code == 201
    # The worker runs one job at a time: the slow one runs while the second waits in the queue.
    slow = api.post("/v1/jobs", json={"kind": "text.generate", "webhook_url": receiver, "input": {
        "model": "slow-gpt2", "prompt": "Once", "max_new_tokens": 300, "seed": 1}}).json()
    api.wait(slow["id"], until=("running",))
    queued = api.post("/v1/jobs", json={"kind": "text.generate", "webhook_url": receiver, "input": {
        "model": "builtin:tiny-gpt2", "prompt": "Never", "max_new_tokens": 4}}).json()
    assert api.post(f"/v1/jobs/{queued['id']}/cancel").json()["status"] == "canceled"
    assert api.wait(slow["id"], timeout_s=120)["status"] == "succeeded"

    def ended_both():
        return (any(e["type"] == "job.succeeded" for e in _events(Receiver.got, slow["id"]))
                and _events(Receiver.got, queued["id"]))
    wait_for(ended_both, 60, "the slow job's end and the canceled job's webhooks")
    assert [e["type"] for e in _events(Receiver.got, queued["id"])] == ["job.canceled"]  # it never started
    kinds = [e["type"] for e in _events(Receiver.got, slow["id"])]
    assert kinds[0] == "job.started" and kinds[-1] == "job.succeeded" and "job.progress" in kinds
    shown = [e["data"]["progress"]["completed"] for e in _events(Receiver.got, slow["id"]) if e["type"] == "job.progress"]
    assert shown == sorted(shown) and shown[-1] > 0


def test_a_default_url_serves_every_job_that_names_none(hooked, receiver):
    Receiver.got, Receiver.answers = [], []
    api = hooked.api(hooked.create_key("defaulter"))
    refused = api.put("/v1/webhooks/default", json={"url": receiver})
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "url"  # no secret yet
    assert api.post("/v1/webhooks/secret").status_code == 201
    assert api.get("/v1/webhooks/default").json() == {"object": "webhook.default", "url": None}
    bad = api.put("/v1/webhooks/default", json={"url": "ftp://example.com/x"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "url"
    assert api.put("/v1/webhooks/default", json={"url": receiver}).json()["url"] == receiver
    assert api.get("/v1/webhooks/default").json()["url"] == receiver

    job = api.submit({"model": "builtin:tiny-gpt2", "prompt": "Default", "max_new_tokens": 4})
    assert job["webhook_url"] == receiver
    assert api.wait(job["id"])["status"] == "succeeded"
    wait_for(lambda: any(e["type"] == "job.succeeded" for e in _events(Receiver.got, job["id"])), 60,
             "the default URL's job.succeeded")
    assert api.delete("/v1/webhooks/default").json()["url"] is None
    assert api.submit({"model": "builtin:tiny-gpt2", "prompt": "None", "max_new_tokens": 4})["webhook_url"] is None


def test_private_urls_are_refused_by_default(platform):
    api = platform.api(platform.create_key("ssrf"))
    assert api.post("/v1/webhooks/secret").status_code == 201
    for url in ("http://127.0.0.1:9/x", "http://169.254.169.254/latest/meta-data", "http://10.0.0.1/",
                "ftp://example.com/x"):
        resp = api.post("/v1/jobs", json={"kind": "text.generate", "webhook_url": url, "input": {
            "model": "builtin:tiny-gpt2", "prompt": "x", "max_new_tokens": 1}})
        assert resp.status_code == 400 and resp.json()["error"]["param"] == "webhook_url", (url, resp.text)
