"""The whole platform for a benchmark: `aigc up` in a temporary data directory, with its key, Redis and pids."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from core.net import free_port


def children(pid: int) -> list[int]:
    """Direct children of `pid`, read from /proc (Linux)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # The command name may hold spaces: the ppid is the second field after the ')'.
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            out.append(int(entry.name))
    return out


def cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def rss_kib(pid: int) -> int:
    """Resident memory of one process (VmRSS), in KiB."""
    for line in (Path("/proc") / str(pid) / "status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def _drain(stream) -> None:
    for _ in stream:
        pass


class Stack:
    """`aigc up` (embedded Redis, an inference and a training worker, gunicorn, local storage) on a free port."""

    def __init__(self, models_dir: Path | None = None, start_timeout_s: float = 300, **env):
        self.data = Path(tempfile.mkdtemp(prefix="aigc-bench-"))
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        base_env = {k: v for k, v in os.environ.items() if not k.startswith("AIGC_")}
        # The benches measure throughput from one key: the per-key limits are policy, not cost.
        base_env.update(AIGC_RATE_LIMIT_PER_MINUTE="0", AIGC_MAX_STREAMS_PER_KEY="0", AIGC_MAX_OPEN_JOBS="0")
        base_env.update(AIGC_DATA_DIR=str(self.data), PYTHONUNBUFFERED="1", **env)
        if models_dir is not None:
            base_env["AIGC_MODELS_DIR"] = str(models_dir)
        self.proc = subprocess.Popen([sys.executable, "-m", "aigc", "up", "--port", str(self.port)],
                                     env=base_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            self.key = self._read_key(start_timeout_s)
        except BaseException:
            self.close()
            raise
        # Drain the platform's log so it never blocks on a full pipe.
        threading.Thread(target=_drain, args=(self.proc.stdout,), daemon=True).start()
        self.redis_url = (self.data / "redis.url").read_text().strip()
        # One kept-alive connection, so the client's cost per request is the request itself. The server
        # drops it after two idle seconds: a GET that meets the drop is sent again on a new one.
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {self.key}"
        self.http.mount("http://", HTTPAdapter(max_retries=Retry(total=3, allowed_methods={"GET"},
                                                                 status_forcelist=())))

    def _read_key(self, timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.proc.poll() is None:
            line = self.proc.stdout.readline()
            if line.strip().startswith("API key"):
                return line.split()[-1]
        raise RuntimeError("aigc up did not start")

    def worker_pid(self) -> int:
        """The inference worker's main process (`aigc worker` execs celery, so the pid is the child's)."""
        for pid in children(self.proc.pid):
            # aigc up runs an inference and a training worker; the benches measure the inference one.
            if " celery " in cmdline(pid) and "inference" in cmdline(pid):
                return pid
        raise RuntimeError("no worker process under aigc up")

    def pool_pids(self) -> list[int]:
        """The prefork pool children that run the tasks."""
        return children(self.worker_pid())

    def call(self, method: str, path: str, body: dict | None = None, timeout_s: float = 60) -> dict:
        resp = self.http.request(method, self.base + path, json=body, timeout=timeout_s)
        resp.raise_for_status()
        return resp.json()

    def wait_job(self, job_id: str, timeout_s: float, poll_s: float = 0.02) -> dict:
        """Poll a job until it succeeds; a failed or canceled job, or the timeout, raises."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            job = self.call("GET", f"/v1/jobs/{job_id}")
            if job["status"] == "succeeded":
                return job
            if job["status"] in ("failed", "canceled"):
                raise RuntimeError(f"bench job {job_id} ended {job['status']}: {job['error']}")
            time.sleep(poll_s)
        raise RuntimeError(f"bench job {job_id} did not finish within {timeout_s} s")

    def get_bytes(self, path: str, timeout_s: float = 60) -> bytes:
        resp = self.http.get(self.base + path, timeout=timeout_s)
        resp.raise_for_status()
        return resp.content

    def close(self) -> None:
        """Stop the platform the way Ctrl-C does (web, worker, Redis in order), then drop its data."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        shutil.rmtree(self.data, ignore_errors=True)

    def __enter__(self) -> "Stack":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
