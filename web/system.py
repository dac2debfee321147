"""Public, unauthenticated routes: liveness, readiness, the OpenAPI spec, signed local downloads."""

from __future__ import annotations

from flask import Blueprint, jsonify, send_file

from core.errors import AigcError, NotFound
from core.redisdb import WORKER_PREFIX
from core.storage import LocalStorage
from web.deps import get_redis, get_storage
from web.openapi import build_spec

bp = Blueprint("system", __name__)


@bp.get("/favicon.ico")
def favicon():
    """No icon: an empty answer rather than a 404 in every page's console."""
    return "", 204


@bp.get("/healthz")
def healthz():
    """The process is up; says nothing about Redis or workers."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    """Redis, storage and at least one worker reachable: 200, else 503 with what is missing."""
    checks, ok = {}, True
    try:
        get_redis().ping()
        workers = sum(1 for _ in get_redis().scan_iter(WORKER_PREFIX + "*", count=100))
        checks["redis"] = "ok"
        checks["workers"] = workers
        ok = workers > 0
    except Exception as exc:  # any failure here is the answer, not a crash
        checks["redis"], checks["workers"], ok = f"error: {exc}", 0, False
    try:
        get_storage().check()
        checks["storage"] = "ok"
    except AigcError as exc:
        checks["storage"], ok = f"error: {exc.message}", False
    return jsonify({"status": "ok" if ok else "unavailable", "checks": checks}), 200 if ok else 503


@bp.get("/v1/openapi.json")
def openapi():
    return jsonify(build_spec())


@bp.get("/v1/storage/<token>")
def signed_download(token):
    """A signed, expiring link into the local store (the local stand-in for presigned S3 URLs)."""
    storage = get_storage()
    if not isinstance(storage, LocalStorage):
        raise NotFound("Signed local links are served only with the local store")
    key = storage.resolve_token(token)
    path = storage.path_for(key)
    if not path.is_file():
        raise NotFound("No such object")
    return send_file(path, download_name=path.name, max_age=0)
