"""The one place that opens Redis connections, with retries that ride out a Redis restart."""

from __future__ import annotations

import redis
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError, TimeoutError
from redis.retry import Retry

PREFIX = "aigc:"
WORKER_PREFIX = PREFIX + "worker:"  # live workers announce themselves under this prefix


def connect(url: str, retries: int = 6, max_connections: int | None = None, connect_timeout_s: float = 5,
            socket_timeout_s: float = 30) -> redis.Redis:
    """A client that retries a command on a dropped connection (about 10 s in all at 6 retries).
    max_connections: the pool's bound (redis-py's default, 100, where None). The timeouts bound how
    long a command waits on a Redis cut off by the network (packets dropped, nothing refused)."""
    return redis.Redis.from_url(
        url,
        max_connections=max_connections,
        decode_responses=True,
        health_check_interval=15,
        socket_connect_timeout=connect_timeout_s,
        socket_timeout=socket_timeout_s,
        retry=Retry(ExponentialBackoff(cap=3.0, base=0.1), retries),
        retry_on_error=[ConnectionError, TimeoutError],
    )


def persistence_problem(client: redis.Redis) -> str | None:
    """Why this Redis could lose queued jobs on restart, or None when AOF is on."""
    info = client.info("persistence")
    if int(info.get("aof_enabled", 0)) != 1:
        return "Redis runs without appendonly (AOF): queued jobs could be lost on restart"
    return None


def draining_key(hostname: str) -> str:
    """Set while the worker `hostname` shuts down (SIGTERM): its running jobs hand over."""
    return f"{PREFIX}draining:{hostname}"
