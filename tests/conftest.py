"""Shared fixtures: a private Redis server for unit tests of core/ (the real binary, not a fake)."""

from __future__ import annotations

import pytest

from core.redisdb import connect
from workers.embedded_redis import EmbeddedRedis


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    server = EmbeddedRedis(tmp_path_factory.mktemp("unit-redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_client(redis_server):
    client = connect(redis_server.url)
    client.flushdb()
    yield client
    client.close()
