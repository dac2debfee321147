"""An idle engine's memory: its cache buffers are kept a few seconds for the next run, then freed and the heap's free pages handed back to the system."""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
import time
import weakref
from typing import Callable

# How long an idle engine keeps its cache. The next chunk of a campaign, or the next burst of
# requests, writes into the buffers it has: a fresh buffer is faulted in and zeroed page by page
# (1.2 GB for a 128-row chunk of GPT-2 small: 0.4 s of its 17 s on 2 cores), and the chunks of a
# campaign follow each other within a second.
IDLE_RELEASE_S = 5.0
# Only a cache whose layer buffers are this large is kept: a smaller one is made again in a few
# milliseconds, and kept among the heap's blocks it would pin the freed pages around it.
KEEP_IDLE_CACHE_FROM_BYTES = 32 << 20

_libc = None
_last_trim = 0.0


def release_later(owner: object, release: Callable[[object], None], delay_s: float) -> None:
    """Call release(owner) in delay_s from a timer thread, unless the owner is gone by then (the timer
    holds no reference to it: an evicted model's engine goes with it)."""
    ref = weakref.ref(owner)

    def fire() -> None:
        alive = ref()
        if alive is not None:
            release(alive)

    timer = threading.Timer(delay_s, fire)
    timer.daemon = True
    timer.start()


def return_freed_memory() -> None:
    """Hand the heap's free pages back to the system once the engine's cache is freed (at most once a
    second). Cache buffers of every size come and go; past glibc's mmap threshold, which it raises
    to the largest block freed so far, they come from the heap, whose free pages it keeps: the
    worker's RSS then climbed with the mix of shapes it had served (bench/rss_growth.py)."""
    global _libc, _last_trim
    now = time.monotonic()
    if now - _last_trim < 1.0:
        return
    _last_trim = now
    try:
        if _libc is None:
            _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        _libc.malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        _libc = False
