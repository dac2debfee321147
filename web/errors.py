"""Every error leaves as {"error": {"code", "message", "type", "param", "errors"?}} under /v1, or as a page in the UI."""

from __future__ import annotations

from flask import Flask, jsonify, render_template, request
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from werkzeug.exceptions import HTTPException

from core.errors import AigcError

REDIS_RETRY_AFTER_S = 5  # what a 503 for an unreachable Redis tells the caller to wait


def error_type(status: int) -> str:
    """OpenAI's error `type` for a status: what its clients and dashboards group errors by."""
    if status >= 500:
        return "server_error"
    return {401: "authentication_error", 403: "permission_error", 429: "rate_limit_error"}.get(
        status, "invalid_request_error")


def error_response(status: int, code: str, message: str, param: str | None = None,
                   errors: list[dict] | None = None, **extra):
    """The error body; `extra` fields (a job_id to poll, say) follow the standard ones."""
    body = {"code": code, "message": message, "type": error_type(status), "param": param, **extra}
    if errors:
        body["errors"] = errors  # every problem at once; code/message/param name the first
    resp = jsonify({"error": body})
    resp.status_code = status
    if status == 401:
        resp.headers["WWW-Authenticate"] = 'Bearer realm="aigc"'
    return resp


def _wants_json() -> bool:
    return request.path.startswith(("/v1", "/healthz", "/readyz")) or request.path.endswith(".json")


def register(app: Flask) -> None:
    @app.errorhandler(AigcError)
    def on_aigc_error(exc: AigcError):
        # A 429 says when to come back (the official clients honour Retry-After).
        headers = {"Retry-After": str(exc.retry_after_s)} if hasattr(exc, "retry_after_s") else {}
        if _wants_json():
            resp = error_response(exc.status, exc.code, exc.message, exc.param, exc.errors)
            resp.headers.update(headers)
            return resp
        return render_template("error.html", status=exc.status, message=exc.message), exc.status, headers

    @app.errorhandler(RedisConnectionError)
    @app.errorhandler(RedisTimeoutError)
    def on_redis_down(exc):
        """Refused or cut off by the network: nothing was accepted, so the caller may simply retry."""
        message = "The job store (Redis) is unreachable; try again shortly"
        headers = {"Retry-After": str(REDIS_RETRY_AFTER_S)}
        if _wants_json():
            resp = error_response(503, "unavailable", message)
            resp.headers.update(headers)
            return resp
        return render_template("error.html", status=503, message=message), 503, headers

    @app.errorhandler(Exception)
    def on_unexpected(exc):
        """A bug, not bad input: logged with its traceback, answered without internals."""
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        if _wants_json():
            return error_response(500, "internal_error", "Something went wrong on the server")
        return render_template("error.html", status=500, message="Something went wrong on the server"), 500

    @app.errorhandler(HTTPException)
    def on_http_error(exc: HTTPException):
        code = {413: "too_large", 404: "not_found", 405: "method_not_allowed"}.get(exc.code, "http_error")
        message = exc.description or exc.name
        if exc.code == 413:
            message = f"The request body is larger than {request.max_content_length} bytes"
        # The exception's own headers (Allow on a 405, as HTTP requires) go with our body.
        headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}
        if _wants_json():
            resp = error_response(exc.code or 500, code, message)
            resp.headers.update(headers)
            return resp
        return render_template("error.html", status=exc.code, message=message), exc.code, headers
