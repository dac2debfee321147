"""`aigc up`'s restart policy: a crashed child comes back after a doubling pause; a crash loop stops the platform."""

from __future__ import annotations

import sys
import time

from aigc.supervisor import CRASH_LOOP, CRASH_WINDOW_S, Child


def _wait_exit(child: Child) -> None:
    deadline = time.monotonic() + 30
    while child.proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)


def test_a_crashing_child_restarts_with_doubling_pauses_then_counts_as_a_loop(capsys):
    child = Child("flaky worker", [sys.executable, "-c", "raise SystemExit(3)"], {}, stop_timeout_s=5)
    now, pauses = 1000.0, []
    for crash in range(1, CRASH_LOOP):
        _wait_exit(child)
        assert child.check(now) is None
        pauses.append(child.restart_at - now)
        first = child.proc
        assert child.check(child.restart_at - 0.01) is None and child.proc is first  # not yet
        now = child.restart_at
        assert child.check(now) is None and child.proc is not first  # started again
    assert pauses == [1.0, 2.0, 4.0, 8.0]
    _wait_exit(child)
    assert child.check(now) == "loop"
    out = capsys.readouterr().out
    assert "The flaky worker exited with code 3; starting it again in 1 s" in out
    assert f"its {CRASH_LOOP}th crash within {CRASH_WINDOW_S:.0f} s" in out


def test_crashes_outside_the_window_are_forgotten():
    child = Child("worker", [sys.executable, "-c", "raise SystemExit(1)"], {}, stop_timeout_s=5)
    now = 0.0
    for _ in range(CRASH_LOOP * 2):  # one crash every window: never a loop, always the first pause
        _wait_exit(child)
        assert child.check(now) is None and child.restart_at - now == 1.0
        now = child.restart_at
        child.check(now)
        now += CRASH_WINDOW_S
    child.stop()
