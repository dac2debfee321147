"""A small REST client for the CLI: submit a job, read it, and draw a progress bar while it runs."""

from __future__ import annotations

import json
import shutil
import sys
import time
import urllib.error
import urllib.request
import uuid
from typing import Callable

from core.jobs import PAUSED, TERMINAL


class ApiError(Exception):
    def __init__(self, status: int, body: dict | str):
        self.status, self.body = status, body
        err = body.get("error", {}) if isinstance(body, dict) else {}
        where = f" ({err['param']})" if err.get("param") else ""
        super().__init__(f"HTTP {status}: {err.get('message', body)}{where}")


def api_error(exc: urllib.error.HTTPError) -> ApiError:
    """An HTTP error answer as an ApiError, its JSON error body parsed where it has one."""
    raw = exc.read().decode(errors="replace")
    try:
        return ApiError(exc.code, json.loads(raw))
    except ValueError:
        return ApiError(exc.code, raw)


class Client:
    def __init__(self, base_url: str, api_key: str | None):
        if not api_key:
            raise SystemExit("Set AIGC_API_KEY (make run prints one; aigc keys create NAME makes more).")
        self.base_url, self.api_key = base_url.rstrip("/"), api_key

    # Transient trouble (a 502/503/504 or 429 while the server restarts or is busy) is retried with a
    # doubling pause, about a minute in all; no answer at all (refused, dropped, timed out) for about
    # 8 s; anything else is an answer.
    RETRY_STATUSES = {429, 502, 503, 504}
    RETRY_PAUSES_S = (0.5, 1, 2, 4, 8, 15, 30)
    UNREACHABLE_TRIES = 4

    def request(self, method: str, path: str, body: dict | None = None, headers: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base_url + path, data=data, method=method, headers={
            "Authorization": f"Bearer {self.api_key}", "Content-Type": "application/json", **(headers or {})})
        return self._send(req)

    def _send(self, req) -> dict:
        """Send, retrying transient failures. A POST is retried only with an Idempotency-Key, so a
        retry after a lost answer finds the job the first try made rather than making a second."""
        retryable = req.get_method() == "GET" or req.has_header("Idempotency-key")
        for attempt, pause in enumerate((*self.RETRY_PAUSES_S, None)):
            try:
                with urllib.request.urlopen(req, timeout=30) as resp:
                    return json.loads(resp.read())
            except urllib.error.HTTPError as exc:
                if not (retryable and exc.code in self.RETRY_STATUSES and pause is not None):
                    raise api_error(exc) from None
                retry_after = exc.headers.get("Retry-After", "")
                pause = max(pause, min(60.0, float(retry_after))) if retry_after.isdigit() else pause
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                # Nothing answering at all is more often a wrong URL than a restart: about 8 s.
                if not retryable or pause is None or attempt >= self.UNREACHABLE_TRIES:
                    raise
                print(f"({exc}; trying again in {pause:g} s)", file=sys.stderr)
            time.sleep(pause)
        raise AssertionError("unreachable")

    def upload(self, filename: str, data: bytes, purpose: str) -> dict:
        """POST /v1/files as multipart/form-data."""
        boundary = "aigc-" + uuid.uuid4().hex
        parts = [
            f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\n{purpose}\r\n'.encode(),
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n".encode(), data, f"\r\n--{boundary}--\r\n".encode()]
        req = urllib.request.Request(self.base_url + "/v1/files", data=b"".join(parts), method="POST", headers={
            "Authorization": f"Bearer {self.api_key}", "Content-Type": f"multipart/form-data; boundary={boundary}"})
        return self._send(req)

    def submit(self, body: dict) -> dict:
        # One key per submission: a retried POST (its answer lost) returns the job the first made.
        return self.request("POST", "/v1/jobs", body, headers={"Idempotency-Key": uuid.uuid4().hex})

    def get(self, job_id: str) -> dict:
        return self.request("GET", f"/v1/jobs/{job_id}")


def progress_line(job: dict, columns: int = 80) -> str:
    """`[#########.....]  45%  29/64 tokens  eta 3s  running`, never wider than `columns` - 1: a line
    that wrapped could not be redrawn in place (each redraw would stack another)."""
    p = job.get("progress") or {}
    total, done = p.get("total"), p.get("completed") or 0
    frac = 1.0 if job["status"] == "succeeded" else (min(1.0, done / total) if total else 0.0)
    parts = [f"{frac * 100:5.1f}%"]
    if total:
        parts.append(f"{done}/{total} {p.get('unit') or ''}".strip())
    if p.get("eta_s") is not None and job["status"] not in (*TERMINAL, PAUSED):  # a paused job has no ETA
        parts.append(f"eta {p['eta_s']:.0f}s")
    parts.append(job["status"])
    tail = "  ".join(parts)
    width = min(30, columns - 1 - len(tail) - 3)  # the bar shrinks first, then goes
    if width >= 5:
        filled = int(round(frac * width))
        tail = f"[{'#' * filled}{'.' * (width - filled)}] {tail}"
    return tail[:max(1, columns - 1)]


def watch(client: Client, job_id: str, interval_s: float = 1.0, timeout_s: float = 24 * 3600,
          out=sys.stderr, above: Callable[[dict], list[str]] | None = None, above_out=sys.stdout) -> dict:
    """Poll until the job is terminal, redrawing one progress line (a line per change off a TTY).
    above: lines to print on `above_out` at each poll (a fine-tune's new events), over the bar."""
    tty = out.isatty()
    last = ""
    deadline = time.monotonic() + timeout_s
    while True:
        job = client.get(job_id)
        lines = above(job) if above else []
        if lines and tty and last:
            out.write("\r\033[K")  # the bar's line goes to the lines; it is drawn again below them
            out.flush()
            last = ""
        for text in lines:
            print(text, file=above_out, flush=True)
        line = progress_line(job, shutil.get_terminal_size().columns if tty else 80)
        if line != last:
            out.write(("\r\033[K" + line) if tty else line + "\n")
            out.flush()
            last = line
        if job["status"] in TERMINAL or time.monotonic() > deadline:
            if tty:
                out.write("\n")
            return job
        time.sleep(interval_s)
