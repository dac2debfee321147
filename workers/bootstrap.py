"""Worker bootstrap through Celery signals: per-child device and threads, housekeeping, safety checks."""

from __future__ import annotations

import logging
import os

from celery import signals

from core import logs
from core.catalog import announced_text_models
from core.redisdb import draining_key, persistence_problem
from workers.orphans import HeldMessages, restore
from workers.reaper import Housekeeper
from workers.runtime import get_runtime

log = logging.getLogger(__name__)
# oneDNN keeps a compiled primitive for every matmul shape it has run (1,024 by default). The engine's
# steps come in every shape (rows and columns change each step), and on a CPU with native bf16 each
# shape's bf16 primitive stayed: a third of the worker's RSS growth over 5,000 mixed requests
# (bench/rss_growth.py). The hot shapes of a steady load fit in 32. Read when oneDNN first runs,
# after this import.
os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "32")
# PyTorch's oneDNN (ideep) matmul keeps a cache of its own per shape, LRU_CACHE_CAPACITY entries (1,024
# by default), each with buffers of its own: most of the growth left after the line above (the pool
# process read 620 MiB after warm-up with the default, 541 with 8). A step runs one matmul shape per
# weight (its rows the step's), so 8 entries keep a step's shapes: with 1, every matmul made its
# primitive afresh, ~2% of a decoding step.
os.environ.setdefault("LRU_CACHE_CAPACITY", "8")
_housekeeper: Housekeeper | None = None
_held = HeldMessages()


@signals.after_setup_logger.connect
@signals.after_setup_task_logger.connect
def job_fields_in_logs(logger=None, format=None, **_):
    """Every line says which job it is about (core/logs.py); AIGC_LOG_FORMAT=json makes it JSON."""
    for handler in logger.handlers if logger else []:
        logs.apply(handler, get_runtime().settings.log_format, format)


@signals.worker_init.connect
def refuse_volatile_redis(**_):
    """Queued jobs must survive a Redis restart: refuse a Redis without AOF unless told."""
    rt = get_runtime()
    problem = persistence_problem(rt.redis)
    if problem and not rt.settings.allow_volatile_redis:
        raise SystemExit(f"{problem}. Enable appendonly, or set AIGC_ALLOW_VOLATILE_REDIS=true.")


@signals.worker_process_init.connect
def init_child(**_):
    """Runs in each pool child after the fork: CUDA and threads are set up here, never in the parent."""
    import torch

    rt = get_runtime()
    threads = rt.settings.torch_threads or max(1, (os.cpu_count() or 1) // rt.settings.worker_concurrency)
    torch.set_num_threads(threads)
    log.info("worker child %s: device=%s torch_threads=%s", os.getpid(), rt.device, threads)


@signals.worker_ready.connect
def start_housekeeping(sender=None, **_):
    global _housekeeper
    rt = get_runtime()
    queues = sorted(q.name for q in sender.app.amqp.queues.consume_from.values()) if sender else []
    # A campaign counts as stalled after five lease periods without a chunk finishing.
    app = sender.app
    _housekeeper = Housekeeper(rt.store, app.send_task, queues, rt.settings.reaper_interval_s,
                               rt.storage, stale_s=5 * rt.settings.lease_ttl_s,
                               models=lambda: announced_text_models(rt.settings),
                               ttl_s=rt.settings.lease_ttl_s, held=_held, restore=lambda tags: restore(app, tags))
    _housekeeper.start()


@signals.task_received.connect
def note_held(request=None, **_):
    """In the main process, as a message arrives: it is this worker's until acknowledged."""
    _held.add(request)


@signals.worker_shutting_down.connect
def start_draining(sender=None, **_):
    """SIGTERM: tell this worker's running jobs (in the pool children) to checkpoint and hand over,
    so the warm shutdown ends in seconds rather than when a long job ends."""
    try:
        get_runtime().redis.set(draining_key(str(sender)), "1", ex=600)
    except Exception:  # Redis away: the jobs run on until the grace period, then their leases lapse
        log.warning("could not announce the shutdown of %s", sender, exc_info=True)


@signals.worker_shutdown.connect
def stop_housekeeping(**_):
    if _housekeeper:
        _housekeeper.stop()
