"""Queue overhead: small text.generate jobs over REST and real workers vs bare Celery delay/get on the same Redis."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.celery_baseline import QUEUE, make_app
from bench.stack import Stack
from core.clock import parse_iso

CONCURRENCY = 1  # worker processes on both sides
REPO = Path(__file__).resolve().parents[1]
# The cheapest real job: one token from the built-in model (its cost is the platform's, not the model's).
JOB = {"model": "builtin:tiny-gpt2", "prompt": "Fresh coffee for", "max_new_tokens": 1}


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]


def _summary(rate: float, latencies: list[float]) -> dict:
    return {"jobs_per_s": round(rate, 1), "p50_ms": round(percentile(latencies, 50) * 1000, 1),
            "p99_ms": round(percentile(latencies, 99) * 1000, 1)}


# -- the platform: POST /v1/jobs, completed by the worker, finished_at from the record ------------------
def _finished_at(stack: Stack, job_id: str, timeout_s: float, poll_s: float = 0.02) -> float:
    return parse_iso(stack.wait_job(job_id, timeout_s, poll_s)["finished_at"]).timestamp()


def _submit(stack: Stack, i: int) -> str:
    return stack.call("POST", "/v1/jobs", {"kind": "text.generate", "input": dict(JOB, seed=i)})["id"]


def rest_latencies(stack: Stack, sequential: int) -> list[float]:
    """One job at a time, from just before the POST to the record's finished_at."""
    for i in range(10):  # warm-up: the worker builds the model once
        _finished_at(stack, _submit(stack, i), 120)
    latencies = []
    for i in range(sequential):
        start = time.time()
        latencies.append(_finished_at(stack, _submit(stack, i), 60) - start)
    return latencies


def rest_burst(stack: Stack, jobs: int) -> float:
    """Jobs/s for a burst submitted back to back; the queue is FIFO, so the last job is (about) the
    last done."""
    start = time.time()
    ids = [_submit(stack, i) for i in range(jobs)]
    _finished_at(stack, ids[-1], 600, poll_s=0.05)
    done = [_finished_at(stack, job_id, 60) for job_id in ids]
    return jobs / (max(done) - start)


# -- the baseline: a trivial task with delay() and get() ----------------------------------------------
def _baseline_worker(redis_url: str, log_dir: Path) -> subprocess.Popen:
    env = dict(os.environ, BENCH_REDIS_URL=redis_url)
    # The same worker flags as `aigc worker` (aigc/cli.py).
    with open(log_dir / "baseline-worker.log", "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "bench.celery_baseline", "worker", "--queues", QUEUE,
             "--concurrency", str(CONCURRENCY), "--hostname", f"bench-baseline-{os.getpid()}@%h",
             "--loglevel", "INFO", "--without-gossip", "--without-mingle"],
            env=env, cwd=REPO, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)


class CelerySide:
    """The bare Celery baseline: its own worker process on the platform's Redis."""

    def __init__(self, redis_url: str, log_dir: Path):
        self.client = make_app(redis_url)
        self.proc = _baseline_worker(redis_url, log_dir)

    def delay(self, i: int):
        return self.client.send_task("bench.noop", args=[i])

    def latencies(self, sequential: int) -> list[float]:
        for i in range(10):  # warm-up, and waits until the worker consumes
            self.delay(i).get(timeout=120)
        out = []
        for i in range(sequential):
            start = time.time()
            out.append(self.delay(i).get(timeout=60) - start)
        return out

    def burst(self, jobs: int) -> float:
        start = time.time()
        results = [self.delay(i) for i in range(jobs)]
        return jobs / (max(r.get(timeout=600) for r in results) - start)

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def run(jobs: int = 200, sequential: int = 100, rounds: int = 3) -> dict:
    with Stack(AIGC_WORKER_CONCURRENCY=str(CONCURRENCY)) as stack:
        celery = CelerySide(stack.redis_url, stack.data)
        try:
            celery_lat = celery.latencies(sequential)
            rest_lat = rest_latencies(stack, sequential)
            # Interleaved bursts, best of each: other work on the machine only ever slows a burst down.
            celery_rate = rest_rate = 0.0
            for _ in range(rounds):
                celery_rate = max(celery_rate, celery.burst(jobs))
                rest_rate = max(rest_rate, rest_burst(stack, jobs))
        finally:
            celery.close()
    rest, base = _summary(rest_rate, rest_lat), _summary(celery_rate, celery_lat)
    return {
        "job": {"kind": "text.generate", **JOB}, "jobs": jobs, "sequential_jobs": sequential,
        "worker_concurrency": CONCURRENCY, "rounds": rounds,
        "how": "latency: one job at a time, submit to the worker's finished timestamp; "
               "throughput: a burst submitted back to back, jobs / (last finished - first submit), "
               "best of interleaved rounds on each side",
        "rest": rest, "celery": base,
        "ratios": {"rest_vs_celery_jobs_per_s": round(rest["jobs_per_s"] / base["jobs_per_s"], 2)},
    }


def rows(q: dict) -> list[str]:
    r, c = q["rest"], q["celery"]
    return [f"| {q['jobs']} one-token text.generate jobs over REST vs bare Celery delay/get "
            f"(concurrency {q['worker_concurrency']}; best of {q['rounds']} bursts; p50/p99 of "
            f"{q['sequential_jobs']} one at a time) | "
            f"{c['jobs_per_s']} jobs/s, {c['p50_ms']}/{c['p99_ms']} ms | "
            f"{r['jobs_per_s']} jobs/s, {r['p50_ms']}/{r['p99_ms']} ms | "
            f"{q['ratios']['rest_vs_celery_jobs_per_s']}x |"]
