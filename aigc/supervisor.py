"""`aigc up`: the whole platform on one machine: embedded Redis, an inference and a training worker, the web server.

Children run in their own sessions so Ctrl-C reaches only this process, which then stops them in
order: web first (no new jobs), then the workers (warm shutdown requeues or finishes), Redis last.
A worker or the web server that dies is started again, after a pause that doubles with each
crash in a row, and the embedded Redis on the same port from its append-only file (the others
reconnect); only Ctrl-C, SIGTERM or a crash loop stop the platform.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timezone

from core.config import Settings
from core.keys import KeyStore
from core.redisdb import WORKER_PREFIX, connect
from workers.embedded_redis import EmbeddedRedis


def _die_with_parent() -> None:
    """In the child before exec: if `aigc up` is killed outright, take this process down too."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass  # not Linux: the pidfile check on the next start still finds an orphaned Redis


def _spawn(args: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen(args, env=env, start_new_session=True, preexec_fn=_die_with_parent)


# A child that dies this many times within CRASH_WINDOW_S is crash-looping: the platform stops
# rather than restart it forever.
CRASH_LOOP = 5
CRASH_WINDOW_S = 120.0
FIRST_BACKOFF_S, MAX_BACKOFF_S = 1.0, 30.0


class Child:
    """One supervised process: how to start it, and when it died lately."""

    def __init__(self, name: str, args: list[str], env: dict, stop_timeout_s: float):
        self.name, self.args, self.env, self.stop_timeout_s = name, args, env, stop_timeout_s
        self.proc: subprocess.Popen = _spawn(args, env)
        self.crashes: list[float] = []
        self.restart_at: float | None = None

    def check(self, now: float) -> str | None:
        """Notice a death and schedule the restart, or do a restart that is due; returns "loop"
        when the child has crashed CRASH_LOOP times within the window."""
        if self.restart_at is not None:
            if now >= self.restart_at:
                self.proc, self.restart_at = _spawn(self.args, self.env), None
                print(f"The {self.name} was started again (pid {self.proc.pid}).", flush=True)
            return None
        if self.proc.poll() is None:
            return None
        self.crashes = [t for t in self.crashes if now - t < CRASH_WINDOW_S] + [now]
        if len(self.crashes) >= CRASH_LOOP:
            print(f"The {self.name} exited with code {self.proc.returncode}, its {len(self.crashes)}th crash "
                  f"within {CRASH_WINDOW_S:.0f} s; stopping the platform.", flush=True)
            return "loop"
        delay = min(MAX_BACKOFF_S, FIRST_BACKOFF_S * 2 ** (len(self.crashes) - 1))
        print(f"The {self.name} exited with code {self.proc.returncode}; starting it again in {delay:.0f} s "
              f"(crash {len(self.crashes)} within {CRASH_WINDOW_S:.0f} s).", flush=True)
        self.restart_at = now + delay
        return None

    def stop(self) -> None:
        self.restart_at = None
        _stop(self.proc, self.name, self.stop_timeout_s)


def _stop(proc: subprocess.Popen | None, name: str, timeout_s: float) -> None:
    if proc is None or proc.poll() is not None:
        return
    print(f"  stopping {name} ...", flush=True)
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        # A task still running after the grace period: its job's lease lapses and the reaper
        # re-enqueues it on the next start, so killing loses nothing.
        proc.kill()
        proc.wait(10)


def _wait_until_ready(public_url: str, redis_url: str, procs, stopping, timeout_s: float = 180) -> None:
    client = connect(redis_url)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not stopping() and all(p.poll() is None for p in procs):
        try:
            with urllib.request.urlopen(f"{public_url}/healthz", timeout=2) as resp:
                web_ok = resp.status == 200
        except OSError:
            web_ok = False
        if web_ok and next(client.scan_iter(WORKER_PREFIX + "*"), None):
            return
        time.sleep(0.5)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def _is_our_redis(pid: int, data_dir) -> bool:
    try:
        cmdline = open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace")
    except OSError:
        return False
    return "redis-server" in cmdline and str(data_dir) in cmdline


def start_embedded_redis(settings: Settings) -> EmbeddedRedis:
    redis_dir = settings.data_dir / "redis"
    pidfile = redis_dir / "up.pid"
    if pidfile.exists():
        up_pid, _, redis_pid = pidfile.read_text().partition(" ")
        if up_pid.isdigit() and _alive(int(up_pid)):
            raise SystemExit(f"The platform already runs from {settings.data_dir} (pid {up_pid}); stop it first.")
        # A previous `aigc up` died without cleaning up: stop its orphaned Redis, which would
        # otherwise share the AOF directory with the new one.
        if redis_pid.strip().isdigit() and _is_our_redis(int(redis_pid), redis_dir):
            os.kill(int(redis_pid), signal.SIGTERM)
            for _ in range(100):
                if not _alive(int(redis_pid)):
                    break
                time.sleep(0.1)
    server = EmbeddedRedis(redis_dir)
    url = server.start()
    settings.embedded_redis_url_file.write_text(url)
    os.chmod(settings.embedded_redis_url_file, 0o600)
    pidfile.write_text(f"{os.getpid()} {server.proc.pid}")
    return server


def stop_embedded_redis(settings: Settings, server: EmbeddedRedis) -> None:
    server.stop()
    settings.embedded_redis_url_file.unlink(missing_ok=True)
    (settings.data_dir / "redis" / "up.pid").unlink(missing_ok=True)


def _restart_redis(settings: Settings, server: EmbeddedRedis, crashes: int) -> bool:
    """Start the embedded Redis again on its port (every child's URL names it), from its AOF;
    False when it crash-loops or will not start."""
    code = server.proc.returncode
    if crashes >= CRASH_LOOP:
        print(f"The embedded Redis exited with code {code}, its {crashes}th crash within {CRASH_WINDOW_S:.0f} s; "
              "stopping the platform.", flush=True)
        return False
    print(f"The embedded Redis exited with code {code}; starting it again from its append-only file.", flush=True)
    try:
        server.stop()  # reaps it and closes its pipe
        server.start()
    except RuntimeError as exc:
        print(f"The embedded Redis did not start again ({exc}); stopping the platform.", flush=True)
        return False
    (settings.data_dir / "redis" / "up.pid").write_text(f"{os.getpid()} {server.proc.pid}")
    print(f"The embedded Redis is back (pid {server.proc.pid}).", flush=True)
    return True


def up(host: str, port: int) -> int:
    settings = Settings.from_env()
    public_url = os.environ.get("AIGC_PUBLIC_URL") or f"http://{host}:{port}"
    server = start_embedded_redis(settings) if settings.uses_embedded_redis else None
    env = dict(os.environ, AIGC_REDIS_URL=settings.redis_url, AIGC_DATA_DIR=str(settings.data_dir),
               AIGC_PUBLIC_URL=public_url, AIGC_SECRET_KEY=settings.secret_key)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    key = KeyStore(connect(settings.redis_url)).create(f"local-{stamp}", owner="local")

    exe = [sys.executable, "-m", "aigc"]
    # Two workers, so that a chat never waits behind a fine-tune or a GAN: one for inference (and
    # campaign bookkeeping), one for training. Listed in the order they stop: web first.
    web = Child("web server", exe + ["web", "--host", host, "--port", str(port)], env, 15)
    inference = Child("inference worker", exe + ["worker", "--queues", "inference,default"], env, 60)
    training = Child("training worker", exe + ["worker", "--queues", "training"], env, 60)
    children = (web, inference, training)
    stopping = False

    def on_signal(signum, _frame):
        nonlocal stopping
        stopping = True

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # SIGHUP: the terminal closed
        signal.signal(signum, on_signal)
    # The banner comes once everything answers, so start-up logs do not scroll it away.
    _wait_until_ready(public_url, settings.redis_url, [c.proc for c in children], lambda: stopping)
    print(
        "\nThe AIGC platform is starting.\n"
        f"  Open      {public_url}/  (sign in with the key below)\n"
        f"  API       {public_url}/v1  (Authorization: Bearer <key>)\n"
        f"  Data      {settings.data_dir}\n"
        "  Stop      Ctrl-C\n"
        f"  API key   {key}\n", flush=True)
    code = 0
    redis_crashes: list[float] = []
    try:
        while not stopping:
            now = time.monotonic()
            if server is not None and not server.alive():
                redis_crashes = [t for t in redis_crashes if now - t < CRASH_WINDOW_S] + [now]
                if not _restart_redis(settings, server, len(redis_crashes)):
                    stopping, code = True, 1
                    break
            if any(child.check(now) == "loop" for child in children):
                stopping, code = True, 1
                break
            time.sleep(0.5)
    finally:
        print("Stopping the platform ...", flush=True)
        for child in children:
            child.stop()
        if server:
            stop_embedded_redis(settings, server)
        print(f"Stopped. Jobs and artifacts are kept in {settings.data_dir}; the next start with it picks "
              "them up again.", flush=True)
    return code
