"""The per-process model cache: bounded LRU, eviction order, on_evict, one load per key."""

from __future__ import annotations

import threading

import pytest

from workers.model_cache import ModelCache


class Loader:
    """Counts loads per key and returns a fresh object each time."""

    def __init__(self):
        self.calls: list[str] = []

    def __call__(self, key):
        def load():
            self.calls.append(key)
            return {"model": key, "load": len(self.calls)}
        return load


def test_a_hit_does_not_reload():
    cache, loader = ModelCache(2), Loader()
    first = cache.get("a", loader("a"))
    again = cache.get("a", loader("a"))
    assert again is first
    assert loader.calls == ["a"] and cache.loads == 1 and len(cache) == 1


def test_the_cache_is_bounded_and_evicts_least_recently_used():
    evicted = []
    cache, loader = ModelCache(2, on_evict=lambda m: evicted.append(m["model"])), Loader()
    cache.get("a", loader("a"))
    cache.get("b", loader("b"))
    cache.get("a", loader("a"))  # a is now the most recently used
    cache.get("c", loader("c"))  # evicts b
    assert evicted == ["b"] and len(cache) == 2
    cache.get("a", loader("a"))
    assert loader.calls == ["a", "b", "c"]  # a survived
    cache.get("b", loader("b"))  # b comes back by loading again; c is the oldest now
    assert evicted == ["b", "c"]
    assert loader.calls == ["a", "b", "c", "b"] and cache.loads == 4
    assert len(cache) == 2


def test_on_evict_gets_the_evicted_object():
    evicted = []
    cache, loader = ModelCache(1, on_evict=evicted.append), Loader()
    a = cache.get("a", loader("a"))
    cache.get("b", loader("b"))
    assert len(evicted) == 1 and evicted[0] is a


def test_a_failed_load_caches_nothing():
    cache = ModelCache(2)

    def broken():
        raise RuntimeError("no such weights")

    with pytest.raises(RuntimeError):
        cache.get("a", broken)
    assert len(cache) == 0 and cache.loads == 0
    assert cache.get("a", lambda: "ok") == "ok" and cache.loads == 1


def test_concurrent_gets_load_once():
    cache, calls = ModelCache(2), []
    gate = threading.Event()

    def slow_load():
        calls.append(1)
        gate.wait(1)
        return object()

    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.get("k", slow_load))) for _ in range(4)]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join(5)
    assert len(calls) == 1 and cache.loads == 1
    assert len(results) == 4 and all(r is results[0] for r in results)
