"""The embedded Redis: durable settings, password required, data kept across restart, AOF detection."""

from __future__ import annotations

import stat

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from core.redisdb import connect, persistence_problem
from workers.embedded_redis import EmbeddedRedis


@pytest.fixture
def server(tmp_path):
    srv = EmbeddedRedis(tmp_path / "redis")
    srv.start()
    yield srv
    srv.stop()


def test_runs_durable_with_no_eviction(server):
    client = connect(server.url)
    try:
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        assert client.config_get("appendfsync") == {"appendfsync": "everysec"}
        assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
        assert client.config_get("bind")["bind"] == "127.0.0.1"
        assert persistence_problem(client) is None
    finally:
        client.close()


def test_requires_its_password(server):
    assert server.password and f":{server.password}@" in server.url
    def client(**kw):
        # No retries: an auth error is a ConnectionError to redis-py, which would retry with backoff.
        return redis.Redis(host="127.0.0.1", port=server.port, socket_connect_timeout=2,
                           retry=Retry(NoBackoff(), 0), **kw)

    anonymous = client()
    try:
        with pytest.raises(redis.AuthenticationError):
            anonymous.ping()
        wrong = client(password="wrong")
        with pytest.raises(redis.AuthenticationError):
            wrong.ping()
        wrong.close()
        right = client(password=server.password)
        assert right.ping() is True
        right.close()
    finally:
        anonymous.close()


def test_password_is_kept_beside_the_data(tmp_path):
    first = EmbeddedRedis(tmp_path / "r")
    second = EmbeddedRedis(tmp_path / "r")
    assert first.password == second.password and len(first.password) == 32
    path = tmp_path / "r" / "redis.password"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_data_survives_restart(server):
    client = connect(server.url)
    client.set("aigc:test:key", "kept")
    client.rpush("aigc:test:list", "a", "b")
    client.close()
    old_pid = server.proc.pid
    server.restart()
    assert server.alive() and server.proc.pid != old_pid
    client = connect(server.url)
    try:
        assert client.get("aigc:test:key") == "kept"
        assert client.lrange("aigc:test:list", 0, -1) == ["a", "b"]
    finally:
        client.close()


def test_stop_ends_the_process(tmp_path):
    srv = EmbeddedRedis(tmp_path / "r")
    srv.start()
    assert srv.alive()
    srv.stop()
    assert not srv.alive()
    srv.stop()  # stopping twice is harmless
    assert srv.proc.returncode is not None


def test_persistence_problem_names_a_server_without_aof(tmp_path):
    volatile = EmbeddedRedis(tmp_path / "volatile", appendonly=False)
    volatile.start()
    client = connect(volatile.url)
    try:
        assert client.config_get("appendonly") == {"appendonly": "no"}
        problem = persistence_problem(client)
        assert problem and "appendonly" in problem
    finally:
        client.close()
        volatile.stop()
