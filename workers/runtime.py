"""Per-process singletons for task code: settings, Redis, job store, storage, model cache, device.

Built lazily and rebuilt after a fork, so no connection or CUDA state crosses into a child.
"""

from __future__ import annotations

import os
from functools import cached_property

from core import metrics
from core.config import Settings
from core.jobs import JobStore
from core.redisdb import connect
from core.storage import Storage, make_storage
from workers.model_cache import ModelCache


class Runtime:
    def __init__(self, settings: Settings | None = None):
        self.pid = os.getpid()
        self._settings = settings
        self.pending_metrics: list = []  # metrics writes waiting for the next flush (defer_metric)

    @cached_property
    def settings(self) -> Settings:
        return self._settings or Settings.from_env()

    @cached_property
    def redis(self):
        return connect(self.settings.redis_url)

    @cached_property
    def store(self) -> JobStore:
        return JobStore(self.redis)

    @cached_property
    def storage(self) -> Storage:
        return make_storage(self.settings)

    @cached_property
    def models(self) -> ModelCache:
        return ModelCache(self.settings.model_cache_size, on_evict=_free_accelerator_memory,
                          on_lookup=self._count_lookup)

    def _count_lookup(self, hit: bool) -> None:
        result = "hit" if hit else "miss"
        self.defer_metric(lambda pipe: metrics.count(pipe, "model_cache_lookups_total", result=result))

    def defer_metric(self, write) -> None:
        """A metrics write (a function of a pipeline) sent with the next batch of them, so recording
        costs the job path no round trip of its own (tasks/runner._record flushes them)."""
        self.pending_metrics.append(write)

    def placement(self, worker: str) -> dict:
        """Where an attempt runs, for its "running" event: the worker, the device (with the GPU's
        name) and the precision, so a user can see that a job really ran on the GPU in bf16."""
        from models.precision import precision_name

        where = {"worker": worker} if worker else {}
        where.update(device=self.device, precision=precision_name(self.device))
        if self.device == "cuda":
            import torch

            where["accelerator"] = torch.cuda.get_device_name()
        return where

    @cached_property
    def device(self) -> str:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"


def _free_accelerator_memory(_model) -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


_runtime: Runtime | None = None


def get_runtime() -> Runtime:
    """This process's runtime; a forked child gets a fresh one."""
    global _runtime
    if _runtime is None or _runtime.pid != os.getpid():
        _runtime = Runtime()
    return _runtime
