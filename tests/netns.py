"""The platform as separate hosts: Linux network namespaces on one private bridge, one per service.

Redis, the S3 endpoint (moto's server), the web server and each worker run in a namespace of their
own, with their own address on a bridge that exists only inside this machine; they reach each other
over it as they would over a LAN, so a host can be cut off (its link down), cut from one peer (a
blackhole route) or killed whole. Needs root and `ip netns`; `netns_problem()` says why not.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import boto3

from core.keys import KeyStore
from core.redisdb import connect
from tests.harness import Api, ManagedProcess, wait_for
from workers.embedded_redis import redis_server_binary


def _ip(*args: str, ns: str | None = None) -> None:
    cmd = ["ip", *args] if ns is None else ["ip", "netns", "exec", ns, "ip", *args]
    subprocess.run(cmd, check=True, capture_output=True, timeout=30)


def netns_problem() -> str | None:
    """Why this machine cannot run the many-hosts tests, or None."""
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    if not shutil.which("ip"):
        return "needs iproute2's `ip`"
    probe = f"aigc-probe-{secrets.token_hex(3)}"
    try:
        _ip("netns", "add", probe)
        _ip("netns", "del", probe)
    except (subprocess.CalledProcessError, OSError) as exc:
        return f"`ip netns add` failed here: {getattr(exc, 'stderr', b'') or exc}"
    return None


class Host:
    """One namespace on the bridge: its address, and the processes started in it."""

    def __init__(self, net: Network, name: str, index: int):
        self.net, self.name = net, name
        self.ns = f"aigc-{net.tag}-{name}"
        self.veth = f"av{net.tag}{index}"  # the bridge side; interface names stop at 15 characters
        self.ip = f"{net.prefix}.{10 + index}"
        self.procs: list[ManagedProcess] = []
        _ip("netns", "add", self.ns)
        _ip("link", "add", self.veth, "type", "veth", "peer", "name", "eth0", "netns", self.ns)
        _ip("link", "set", self.veth, "master", net.bridge, "up")
        _ip("addr", "add", f"{self.ip}/24", "dev", "eth0", ns=self.ns)
        _ip("link", "set", "eth0", "up", ns=self.ns)
        _ip("link", "set", "lo", "up", ns=self.ns)

    def start(self, label: str, args: list[str], env: dict, log_dir: Path) -> ManagedProcess:
        # `ip netns exec` enters the namespace and execs the program: the pid is the program's.
        proc = ManagedProcess(f"{self.name}-{label}", ["ip", "netns", "exec", self.ns, *args], env, log_dir)
        self.procs.append(proc)
        return proc

    def cut(self) -> None:
        """Link down: every packet to and from this host is lost, as when its cable is pulled."""
        _ip("link", "set", self.veth, "down")

    def mend(self) -> None:
        _ip("link", "set", self.veth, "up")

    def cut_from(self, peer: Host) -> None:
        """This host can no longer send to `peer` (a blackhole route); all else still works."""
        _ip("route", "add", "blackhole", f"{peer.ip}/32", ns=self.ns)

    def mend_from(self, peer: Host) -> None:
        _ip("route", "del", "blackhole", f"{peer.ip}/32", ns=self.ns)

    def kill(self) -> None:
        """The whole host dies: SIGKILL to everything it runs."""
        for proc in self.procs:
            proc.kill9()

    def close(self) -> None:
        for proc in self.procs:
            proc.stop(timeout_s=10)
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True, timeout=30)


class Network:
    """A bridge in the root namespace (which gets .1, so the test itself can reach every host)."""

    def __init__(self):
        self.tag = secrets.token_hex(2)
        self.bridge = f"ab{self.tag}"
        # A random private /24, so runs side by side (or a leftover bridge) do not collide.
        self.prefix = f"10.{200 + secrets.randbelow(50)}.{secrets.randbelow(250)}"
        self.hosts: list[Host] = []
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.prefix}.1/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")

    def host(self, name: str) -> Host:
        host = Host(self, name, len(self.hosts))
        self.hosts.append(host)
        return host

    def close(self) -> None:
        for host in reversed(self.hosts):
            host.close()
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True, timeout=30)


class Cluster:
    """Redis, S3, web and `workers` worker hosts, each in its own namespace."""

    PASSWORD = "many-hosts-test-password"
    BUCKET = "aigc-many-hosts"

    def __init__(self, root: Path, models_dir: Path, workers: int = 3, **env):
        self.root = root
        (root / "logs").mkdir(parents=True, exist_ok=True)
        (root / "redis").mkdir(exist_ok=True)
        self.net = Network()
        try:
            self._start(models_dir, workers, env)
        except BaseException:
            self.close()
            raise

    def _start(self, models_dir: Path, workers: int, env: dict) -> None:
        logs = self.root / "logs"
        self.redis_host, self.s3_host, self.web_host = (self.net.host(n) for n in ("redis", "s3", "web"))
        self.redis_url = f"redis://:{self.PASSWORD}@{self.redis_host.ip}:6379/0"
        self.redis_host.start("server", [
            redis_server_binary(), "--bind", self.redis_host.ip, "--port", "6379", "--requirepass", self.PASSWORD,
            "--dir", str(self.root / "redis"), "--appendonly", "yes", "--appendfsync", "everysec",
            "--save", "", "--daemonize", "no"], {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}, logs)
        self.s3_url = f"http://{self.s3_host.ip}:5000"
        base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.root)}
        self.s3_host.start("moto", [sys.executable, "-m", "moto.server", "-H", self.s3_host.ip, "-p", "5000"],
                           base, logs)
        wait_for(self._redis_answers, 30, "Redis to answer on its host")
        wait_for(self._s3_answers, 60, "the S3 endpoint to answer on its host")
        self.s3().create_bucket(Bucket=self.BUCKET)
        self.env = {
            **base,
            "PYTHONUNBUFFERED": "1",
            "AIGC_DATA_DIR": str(self.root / "data"),
            "AIGC_REDIS_URL": self.redis_url,
            "AIGC_STORAGE_URL": f"s3://{self.BUCKET}/artifacts",
            "AIGC_S3_ENDPOINT_URL": self.s3_url,
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
            "AIGC_SECRET_KEY": "many-hosts-test-secret-key",
            "AIGC_MODELS_DIR": str(models_dir),
            "AIGC_PUBLIC_URL": f"http://{self.web_host.ip}:8000",
            "AIGC_LEASE_TTL_S": "5",
            "AIGC_REAPER_INTERVAL_S": "1",
            "AIGC_TORCH_THREADS": "1",
            "HF_HOME": str(self.root / "hf"),
            "HF_HUB_OFFLINE": "1",
            **env,
        }
        self.web_url = f"http://{self.web_host.ip}:8000"
        self.web_host.start("web", [sys.executable, "-m", "aigc", "web", "--host", self.web_host.ip, "--port", "8000",
                                    "--workers", "1"], self.env, logs)
        self.workers = [self.net.host(f"worker{i + 1}") for i in range(workers)]
        for host in self.workers:
            self.start_worker(host)
        wait_for(self._web_answers, 60, "the web server to answer on its host")

    def start_worker(self, host: Host) -> ManagedProcess:
        proc = host.start("worker", [sys.executable, "-m", "aigc", "worker", "--queues",
                                     "inference,training,default"], self.env, self.root / "logs")
        wait_for(lambda: self.announced(proc.pid), 120, f"the worker on {host.name} to announce itself")
        return proc

    def announced(self, pid: int) -> bool:
        r = self.redis()
        return any(k.endswith(f":{pid}") for k in r.scan_iter("aigc:worker:*"))

    def worker_host(self, celery_hostname: str) -> str:
        """Which host a worker named in an event runs on (its name carries its pid)."""
        pid = int(celery_hostname.split("@")[0].rsplit("-", 1)[1])
        return next(h.name for h in self.workers for p in h.procs if p.pid == pid)

    def redis(self):
        return connect(self.redis_url, retries=1, connect_timeout_s=2, socket_timeout_s=5)

    def s3(self):
        return boto3.client("s3", endpoint_url=self.s3_url, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def api(self, key: str | None) -> Api:
        return Api(self.web_url, key)

    def create_key(self, name: str) -> str:
        return KeyStore(self.redis()).create(name)

    def _redis_answers(self) -> bool:
        try:
            return bool(self.redis().ping())
        except Exception:
            return False

    def _s3_answers(self) -> bool:
        try:
            self.s3().list_buckets()
            return True
        except Exception:
            return False

    def _web_answers(self) -> bool:
        import requests

        try:
            return requests.get(self.web_url + "/healthz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def close(self) -> None:
        self.net.close()
