"""Side effects owned in one place: the app's Redis, job store, key store, storage and Celery client."""

from __future__ import annotations

from flask import current_app

from core.config import Settings
from core.jobs import JobStore
from core.keys import KeyStore
from core.redisdb import connect
from core.registry import ModelRegistry
from core.storage import Storage, make_storage
from core.files import FileStore


def _cached(name: str, build):
    ext = current_app.extensions
    if name not in ext:
        ext[name] = build()
    return ext[name]


def get_settings() -> Settings:
    return current_app.extensions["aigc_settings"]


# A waiting or streaming request holds a connection while it blocks on its job's live stream
# (web/live.py), so one web process needs about as many as it has open requests (gunicorn's
# --worker-connections, aigc/cli.py); redis-py's default pool stops at 100.
WEB_REDIS_CONNECTIONS = 4096


def get_redis():
    # A caller waits at most about 15 s on a Redis the network cut off, then gets a 503 with
    # Retry-After (web/errors.py); a restarting Redis (refused at once) is ridden out for about 3 s.
    # No read here blocks longer than web/live.BLOCK_MS, so a 5 s socket timeout is safe.
    return _cached("aigc_redis", lambda: connect(get_settings().redis_url, retries=4,
                                                 max_connections=WEB_REDIS_CONNECTIONS,
                                                 connect_timeout_s=2, socket_timeout_s=5))


def get_store() -> JobStore:
    return _cached("aigc_store", lambda: JobStore(get_redis()))


def get_keys() -> KeyStore:
    return _cached("aigc_keys", lambda: KeyStore(get_redis()))


def get_storage() -> Storage:
    return _cached("aigc_storage", lambda: make_storage(get_settings()))


def get_files() -> FileStore:
    return _cached("aigc_files", lambda: FileStore(get_redis(), get_storage()))


def get_registry() -> ModelRegistry:
    return _cached("aigc_registry", lambda: ModelRegistry(get_redis()))


def get_celery():
    from workers.celery_app import make_celery

    return _cached("aigc_celery", lambda: make_celery(get_settings()))
