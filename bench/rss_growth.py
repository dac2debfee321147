"""Worker memory: resident-set growth of the worker's pool process across 1,000 generation jobs."""

from __future__ import annotations

import time

from bench.stack import Stack, rss_kib

WARM_UP, JOBS, WAVE = 50, 1000, 100
# Prompts of varied length, so the jobs do not all reuse one tensor shape.
WORDS = "fresh roasted coffee beans for early risers who love a bold cup every single morning".split()


def _job(i: int) -> dict:
    prompt = " ".join(WORDS[: 1 + i % len(WORDS)]) + f" #{i}"
    return {"kind": "text.generate",
            "input": {"model": "builtin:tiny-gpt2", "prompt": prompt, "max_new_tokens": 2, "seed": i}}


def _wave(stack: Stack, start: int, count: int, timeout_s: float = 300) -> None:
    """Submit `count` jobs, then wait until every one has succeeded."""
    ids = [stack.call("POST", "/v1/jobs", _job(i))["id"] for i in range(start, start + count)]
    deadline = time.monotonic() + timeout_s
    for job_id in reversed(ids):  # the queue is FIFO: once the last is done, the rest answer at once
        stack.wait_job(job_id, max(1.0, deadline - time.monotonic()), poll_s=0.05)


def _pool(stack: Stack) -> list[int]:
    pids = stack.pool_pids()
    if not pids:
        raise RuntimeError("the worker has no pool process")
    return sorted(pids)


def run() -> dict:
    with Stack(AIGC_WORKER_CONCURRENCY="1") as stack:
        _wave(stack, 0, WARM_UP)
        pids = _pool(stack)
        before = sum(rss_kib(p) for p in pids)
        main_before = rss_kib(stack.worker_pid())
        for start in range(WARM_UP, WARM_UP + JOBS, WAVE):
            _wave(stack, start, WAVE)
        # The same process must have run every job, or the figure would measure a fresh one.
        if _pool(stack) != pids:
            raise RuntimeError("the worker's pool process was replaced during the run")
        after = sum(rss_kib(p) for p in pids)
        main_after = rss_kib(stack.worker_pid())
    growth = (after - before) / before
    return {
        "job": _job(0)["input"] | {"prompt": "varied, 1-15 words and a number"},
        "warm_up_jobs": WARM_UP, "jobs": JOBS,
        "pool_rss_mib_after_warm_up": round(before / 1024, 1), "pool_rss_mib_after_jobs": round(after / 1024, 1),
        "worker_main_rss_mib": [round(main_before / 1024, 1), round(main_after / 1024, 1)],
        "ratios": {"rss_growth": round(growth, 4)},
    }


def rows(r: dict) -> list[str]:
    return [f"| worker pool process RSS across {r['jobs']} generation jobs (after {r['warm_up_jobs']} warm-up) | "
            f"{r['pool_rss_mib_after_warm_up']} MiB | {r['pool_rss_mib_after_jobs']} MiB | "
            f"{r['ratios']['rss_growth']:+.2%} |"]
