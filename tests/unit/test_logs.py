"""Log lines say which job they are about, as text or as one JSON object per line."""

from __future__ import annotations

import io
import json
import logging

from core import logs


def _logger(fmt: str) -> tuple[logging.Logger, io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    logs.apply(handler, fmt)
    logger = logging.getLogger(f"test-logs-{fmt}")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, out


def test_json_lines_carry_the_job_fields_inside_the_context_only():
    logger, out = _logger("json")
    with logs.about_jobs([{"id": "job_a", "kind": "text.generate", "owner": "alice"},
                          {"id": "job_b", "kind": "text.generate", "owner": "bob"}]):
        logger.info("running %d jobs", 2)
    logger.warning("outside")
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["message"] == "running 2 jobs" and first["level"] == "INFO"
    assert (first["job_id"], first["kind"], first["owner"]) == ("job_a,job_b", "text.generate", "alice,bob")
    assert second["message"] == "outside" and "job_id" not in second


def test_text_lines_name_the_job_and_a_request_can_note_it_piece_by_piece():
    logger, out = _logger("text")
    logs.forget()
    logs.note(job_id="job_c")
    logs.note(owner="carol")
    logger.info("about a job")
    logs.forget()
    logger.info("about nothing")
    about, nothing = out.getvalue().splitlines()
    assert about.endswith("about a job [job=job_c kind= owner=carol]")
    assert nothing.endswith("about nothing")
