"""A small REST client for the CLI: submit a job, read it, and draw a progress bar while it runs."""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
import uuid

from core.jobs import TERMINAL


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

    def request(self, method: str, path: str, body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base_url + path, data=data, method=method, headers={
            "Authorization": f"Bearer {self.api_key}", "Content-Type": "application/json"})
        return self._send(req)

    @staticmethod
    def _send(req) -> dict:
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            raise api_error(exc) from None

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
        return self.request("POST", "/v1/jobs", body)

    def get(self, job_id: str) -> dict:
        return self.request("GET", f"/v1/jobs/{job_id}")


def progress_line(job: dict, width: int = 30) -> str:
    """`[#########.....]  45%  29/64 tokens  eta 3s  running`"""
    p = job.get("progress") or {}
    total, done = p.get("total"), p.get("completed") or 0
    frac = 1.0 if job["status"] == "succeeded" else (min(1.0, done / total) if total else 0.0)
    filled = int(round(frac * width))
    parts = [f"[{'#' * filled}{'.' * (width - filled)}] {frac * 100:5.1f}%"]
    if total:
        parts.append(f"{done}/{total} {p.get('unit') or ''}".strip())
    if p.get("eta_s") is not None and job["status"] not in TERMINAL:
        parts.append(f"eta {p['eta_s']:.0f}s")
    parts.append(job["status"])
    return "  ".join(parts)


def watch(client: Client, job_id: str, interval_s: float = 1.0, timeout_s: float = 24 * 3600,
          out=sys.stderr) -> dict:
    """Poll until the job is terminal, redrawing one progress line (a line per change off a TTY)."""
    tty = out.isatty()
    last = ""
    deadline = time.monotonic() + timeout_s
    while True:
        job = client.get(job_id)
        line = progress_line(job)
        if line != last:
            out.write(("\r\033[K" + line) if tty else line + "\n")
            out.flush()
            last = line
        if job["status"] in TERMINAL or time.monotonic() > deadline:
            if tty:
                out.write("\n")
            return job
        time.sleep(interval_s)
