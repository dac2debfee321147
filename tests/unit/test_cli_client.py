"""The CLI's REST client: transient failures retried (POSTs only with an Idempotency-Key), and a
progress line that fits the terminal so it redraws in place."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from aigc.client import ApiError, Client, progress_line


class Flaky(BaseHTTPRequestHandler):
    """Answers 503 (Retry-After: 0) to the first `failures` requests, then 200 with a job."""

    failures = 2
    seen: list[tuple[str, str | None]] = []

    def _answer(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        Flaky.seen.append((self.command, self.headers.get("Idempotency-Key")))
        if len(Flaky.seen) <= Flaky.failures:
            body, status = {"error": {"code": "unavailable", "message": "Redis restarting"}}, 503
        else:
            body, status = {"id": "job_1", "status": "queued"}, 200
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Retry-After", "0")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _answer

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    Flaky.seen = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    httpd.server_close()


def test_a_submission_is_retried_with_one_idempotency_key(server, monkeypatch):
    pauses = []
    monkeypatch.setattr("aigc.client.time.sleep", pauses.append)  # no real waiting
    client = Client(server, "aigc_test")
    assert client.submit({"kind": "text.generate", "input": {}})["id"] == "job_1"
    assert [m for m, _ in Flaky.seen] == ["POST"] * 3
    keys = {k for _, k in Flaky.seen}
    assert len(keys) == 1 and None not in keys  # the same key each time: the server keeps one job
    assert pauses == [0.5, 1]


def test_a_post_without_a_key_is_not_retried(server):
    client = Client(server, "aigc_test")
    with pytest.raises(ApiError) as err:
        client.request("POST", "/v1/files", {"x": 1})
    assert err.value.status == 503 and len(Flaky.seen) == 1


@pytest.mark.parametrize("columns", [12, 20, 40, 80, 200])
def test_the_progress_line_fits_the_terminal(columns):
    job = {"status": "running", "progress": {"completed": 29, "total": 64, "unit": "tokens", "eta_s": 3.2}}
    line = progress_line(job, columns)
    assert len(line) <= columns - 1
    if columns >= 80:
        assert line.startswith("[") and "29/64 tokens" in line and line.endswith("running")
