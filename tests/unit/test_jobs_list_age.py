"""The jobs list's Age column."""

from __future__ import annotations


def test_the_jobs_list_shows_ages_as_a_person_reads_them():
    from datetime import datetime, timezone

    from web.ui import age

    now = datetime(2026, 12, 4, 12, 0, 0, tzinfo=timezone.utc)
    assert age("2026-12-04T11:59:48.100Z", now) == "11 s ago"
    assert age("2026-12-04T11:57:00Z", now) == "3 min ago"
    assert age("2026-12-04T09:30:00Z", now) == "2 h ago"
    assert age("2026-11-30T12:00:00Z", now) == "4 d ago"
    assert age("2026-12-04T12:00:05Z", now) == "0 s ago"  # a clock a little ahead is not the future
