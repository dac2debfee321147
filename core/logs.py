"""Log lines that say which job they are about: the id, kind and owner of the job a line was written
for (a context variable the runner and the web set), as text or, with AIGC_LOG_FORMAT=json, one JSON
object per line for a log pipeline."""

from __future__ import annotations

import contextvars
import json
import logging
import time
from contextlib import contextmanager

_JOB: contextvars.ContextVar[dict | None] = contextvars.ContextVar("aigc_job", default=None)
FIELDS = ("job_id", "kind", "owner")


@contextmanager
def about_jobs(jobs: list[dict]):
    """Lines logged inside are about these jobs (a batch: ids and owners comma-joined)."""
    token = _JOB.set({"job_id": ",".join(j["id"] for j in jobs),
                      "kind": ",".join(sorted({j["kind"] for j in jobs})),
                      "owner": ",".join(sorted({j["owner"] for j in jobs}))} if jobs else None)
    try:
        yield
    finally:
        _JOB.reset(token)


def note(**fields: str) -> None:
    """For the rest of this context (a web request): lines are about this job id, or this owner's."""
    _JOB.set({**(_JOB.get() or {}), **{k: v for k, v in fields.items() if k in FIELDS and v}})


def forget() -> None:
    """Lines from here on are about no job (a new web request on a reused greenlet or thread)."""
    _JOB.set(None)


class JobFields(logging.Filter):
    """Puts the job's id, kind and owner on every record ('' when the line is about no job)."""

    def filter(self, record: logging.LogRecord) -> bool:
        job = _JOB.get() or {}
        for name in FIELDS:
            if not getattr(record, name, ""):
                setattr(record, name, job.get(name, ""))
        return True


class JsonLines(logging.Formatter):
    """One JSON object per line: time, level, logger, process, message, job fields, exception."""

    def format(self, record: logging.LogRecord) -> str:
        line = {"ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
                "level": record.levelname, "logger": record.name, "pid": record.process,
                "message": record.getMessage()}
        line.update({name: getattr(record, name) for name in FIELDS if getattr(record, name, "")})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


class TextWithJob(logging.Formatter):
    """The usual text line, with `[job=… kind=… owner=…]` when it is about a job."""

    def __init__(self, fmt: str | None = None):
        super().__init__(fmt or "[%(asctime)s: %(levelname)s/%(processName)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if getattr(record, "job_id", ""):
            text += f" [job={record.job_id} kind={record.kind} owner={record.owner}]"
        return text


def apply(handler: logging.Handler, log_format: str, text_fmt: str | None = None) -> None:
    """Give a handler the job fields and the chosen format (AIGC_LOG_FORMAT: json, or text in `text_fmt`)."""
    if not any(isinstance(f, JobFields) for f in handler.filters):
        handler.addFilter(JobFields())
    handler.setFormatter(JsonLines() if log_format == "json" else TextWithJob(text_fmt))
