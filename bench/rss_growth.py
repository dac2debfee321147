"""Worker memory: resident-set growth of the worker's pool process across 5,000 mixed text requests served by its engine, with the curve."""

from __future__ import annotations

import time

from bench.stack import Stack, rss_kib

WARM_UP, JOBS, WAVE = 250, 5000, 250
# Prompts of varied length, so the jobs do not all reuse one tensor shape.
WORDS = "fresh roasted coffee beans for early risers who love a bold cup every single morning".split()
# The mix: completions and chats, lengths, sampling settings, several choices, streamed or not.
MAX_TOKENS = (1, 4, 16, 64)
SAMPLING = ({"temperature": 0.0}, {"temperature": 0.8, "top_p": 0.95}, {"temperature": 1.0, "top_k": 40})


def _job(i: int) -> dict:
    text = " ".join(WORDS[: 1 + i % len(WORDS)] * (1 + i % 4)) + f" #{i}"
    settings = {"model": "builtin:tiny-gpt2", "max_new_tokens": MAX_TOKENS[i % 4], "seed": i,
                "n": 1 + (i % 7 == 0), "stream": i % 3 == 0, **SAMPLING[i % 3]}
    if i % 2:
        return {"kind": "text.chat", "input": {**settings, "messages": [{"role": "user", "content": text}]}}
    return {"kind": "text.generate", "input": {**settings, "prompt": text}}


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
        curve = [(0, round(before / 1024, 1))]
        for start in range(WARM_UP, WARM_UP + JOBS, WAVE):
            _wave(stack, start, WAVE)
            curve.append((start + WAVE - WARM_UP, round(sum(rss_kib(p) for p in pids) / 1024, 1)))
        # The same process must have run every job, or the figure would measure a fresh one.
        if _pool(stack) != pids:
            raise RuntimeError("the worker's pool process was replaced during the run")
        after = sum(rss_kib(p) for p in pids)
        main_after = rss_kib(stack.worker_pid())
    growth = (after - before) / before
    return {
        "jobs_mix": "text.generate and text.chat, prompts of 1-60 words, max_new_tokens 1/4/16/64, greedy, top_p "
                    "and top_k sampling, n 1-2, a third streamed",
        "warm_up_jobs": WARM_UP, "jobs": JOBS,
        "pool_rss_mib_after_warm_up": round(before / 1024, 1), "pool_rss_mib_after_jobs": round(after / 1024, 1),
        "worker_main_rss_mib": [round(main_before / 1024, 1), round(main_after / 1024, 1)],
        "curve_jobs_mib": curve,
        "ratios": {"rss_growth": round(growth, 4)},
    }


def rows(r: dict) -> list[str]:
    curve = ", ".join(f"{jobs}: {mib}" for jobs, mib in r["curve_jobs_mib"])
    return [f"| worker pool process RSS across {r['jobs']} mixed text requests (after {r['warm_up_jobs']} warm-up) | "
            f"{r['pool_rss_mib_after_warm_up']} MiB | {r['pool_rss_mib_after_jobs']} MiB | "
            f"{r['ratios']['rss_growth']:+.2%} |",
            f"| same, the curve (requests: MiB) | | {curve} | |"]
