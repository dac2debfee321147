"""GET /metrics: the platform's figures for Prometheus, read from Redis on each scrape (core/metrics.py),
so one scrape of any web process sees what every web process and worker recorded."""

from __future__ import annotations

import hmac
import json
import time

from flask import Blueprint, Response, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from core import metrics
from core.batches import BATCH_LISTS_KEY, batch_kind
from core.errors import AigcError
from core.job_kinds import KINDS
from core.jobs import JobStore
from core.redisdb import PREFIX, WORKER_PREFIX
from web.deps import get_redis, get_settings
from workers.celery_app import QUEUES

bp = Blueprint("metrics", __name__)

NAMESPACE = "aigc"


class Unauthorized(AigcError):
    status = 401
    code = "invalid_api_key"


class PlatformCollector:
    """Counters and histograms from their hashes; gauges from the state of Redis at this moment."""

    def __init__(self, r):
        self.r = r

    def collect(self):
        yield from self._counters()
        yield from self._histograms()
        yield from self._gauges()

    def _counters(self):
        families: dict[str, CounterMetricFamily] = {}
        for field, value in sorted(self.r.hgetall(metrics.COUNTERS_KEY).items()):
            name, labels = metrics.parse_series(field)
            if name not in metrics.HELP:
                continue
            family = families.get(name)
            if family is None:
                family = families[name] = CounterMetricFamily(
                    f"{NAMESPACE}_{name.removesuffix('_total')}", metrics.HELP[name], labels=sorted(labels))
            family.add_metric([labels[k] for k in sorted(labels)], float(value))
        return families.values()

    def _histograms(self):
        families: dict[str, HistogramMetricFamily] = {}
        for (name, labels), h in sorted(metrics.histograms(self.r.hgetall(metrics.HISTOGRAMS_KEY)).items()):
            keys = [k for k, _ in labels]
            family = families.get(name)
            if family is None:
                family = families[name] = HistogramMetricFamily(f"{NAMESPACE}_{name}", metrics.HELP[name], labels=keys)
            family.add_metric([v for _, v in labels], h["buckets"], h["sum"])
        return families.values()

    def _gauges(self):
        r = self.r
        workers = GaugeMetricFamily(f"{NAMESPACE}_workers", "Live workers (announced within a lease period), by queue",
                                    labels=["queue"])
        per_queue = dict.fromkeys(QUEUES, 0)
        for key in r.scan_iter(WORKER_PREFIX + "*", count=100):
            info = r.get(key)
            for queue in json.loads(info).get("queues", []) if info else []:
                per_queue[queue] = per_queue.get(queue, 0) + 1
        for queue, n in sorted(per_queue.items()):
            workers.add_metric([queue], n)
        yield workers

        messages = GaugeMetricFamily(f"{NAMESPACE}_queue_messages", "Task messages waiting in each Celery queue",
                                     labels=["queue"])
        pipe = r.pipeline(transaction=False)
        for queue in QUEUES:
            pipe.llen(queue)
        for queue, n in zip(QUEUES, pipe.execute()):
            messages.add_metric([queue], n)
        yield messages

        waiting = GaugeMetricFamily(f"{NAMESPACE}_batch_jobs_waiting",
                                    "Jobs waiting in batch lists (run many to a model call), by queue", labels=["queue"])
        lists = sorted(r.smembers(BATCH_LISTS_KEY))
        pipe = r.pipeline(transaction=False)
        for key in lists:
            pipe.llen(key)
        per_queue = dict.fromkeys(QUEUES, 0)
        for key, n in zip(lists, pipe.execute()):
            kind = KINDS.get(batch_kind(key))
            if kind is not None:
                per_queue[kind.queue] = per_queue.get(kind.queue, 0) + n
        for queue, n in sorted(per_queue.items()):
            waiting.add_metric([queue], n)
        yield waiting

        running = GaugeMetricFamily(f"{NAMESPACE}_jobs_running", "Jobs holding a worker now (campaigns included)")
        running.add_metric([], r.scard(JobStore.ACTIVE_KEY))
        yield running

        now = time.time()
        streams = GaugeMetricFamily(f"{NAMESPACE}_streams_active", "Streaming responses open now")
        streams.add_metric([], sum(r.zcount(key, now, "+inf") for key in r.scan_iter(f"{PREFIX}streams:*", count=100)))
        yield streams

        gpu = GaugeMetricFamily(f"{NAMESPACE}_gpu_memory_bytes", "GPU memory allocated by each worker process",
                                labels=["worker"])
        for key in r.scan_iter(metrics.GPU_PREFIX + "*", count=100):
            value = r.get(key)
            if value is not None:
                gpu.add_metric([key.removeprefix(metrics.GPU_PREFIX)], float(value))
        yield gpu


@bp.get("/metrics")
def prometheus_metrics():
    """Open by default (counts and timings only: no ids, owners or text); with AIGC_METRICS_TOKEN set,
    the scraper must send it as a bearer token."""
    token = get_settings().metrics_token
    if token:
        sent = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(sent.encode(), token.encode()):
            raise Unauthorized("Send AIGC_METRICS_TOKEN as a bearer token to read /metrics")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PlatformCollector(get_redis()))
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
