"""One error hierarchy for the whole platform; the web layer maps each class to an HTTP status."""


class AigcError(Exception):
    """Base class: carries a machine-readable code, a message and the offending field."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str, param: str | None = None, code: str | None = None,
                 errors: list[dict] | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        # Every problem found at once ([{"param", "message", "code"}]); the first is message/param.
        self.errors = errors
        if code:
            self.code = code

    def to_dict(self) -> dict:
        out = {"code": self.code, "message": self.message, "param": self.param}
        if self.errors:
            out["errors"] = self.errors
        return out


class InvalidInput(AigcError):
    status = 400
    code = "invalid_input"


class Unauthorized(AigcError):
    status = 401
    code = "unauthorized"


class NotFound(AigcError):
    status = 404
    code = "not_found"


class Conflict(AigcError):
    status = 409
    code = "conflict"


class TooLarge(AigcError):
    status = 413
    code = "too_large"


class UnsupportedMediaType(AigcError):
    status = 415
    code = "unsupported_media_type"


class RateLimited(AigcError):
    """Over a per-caller limit; the answer says when to try again (Retry-After)."""

    status = 429
    code = "rate_limit_exceeded"

    def __init__(self, message: str, retry_after_s: int, param: str | None = None):
        super().__init__(message, param=param)
        self.retry_after_s = max(1, int(retry_after_s))


class Unavailable(AigcError):
    status = 503
    code = "unavailable"


class ConfigError(AigcError):
    """A setting is missing or wrong; raised at start-up, never per request."""

    code = "config_error"


class JobCanceled(AigcError):
    """Raised inside a running job when its cancel flag is seen."""

    code = "canceled"


class HandedOver(Exception):
    """Raised inside a running job whose worker is shutting down, once the job has checkpointed:
    the runner gives its lease back and queues it again, for another worker to resume. Not an
    AigcError: it is no ending of the job."""


class LeaseLost(AigcError):
    """Raised inside a running job when another worker now owns it: stop writing at once."""

    code = "lease_lost"


class JobPaused(HandedOver):
    """Raised inside a running job whose pause was requested, once the job has checkpointed: the
    runner marks it paused and gives its lease back; a resume queues it again."""
