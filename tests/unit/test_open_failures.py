"""The serial source's failed-open log with time passed in: one warning, then one debug line per
retry, a warning summary every minute while the device stays away, one line when it is back."""

from __future__ import annotations

import logging

import pytest

from farmhand.hardware.serialsource import OpenFailures

pytestmark = pytest.mark.timeout(10)


def test_a_device_away_for_three_minutes_logs_one_summary_a_minute(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="farmhand.hardware.serialsource")
    failures = OpenFailures("/dev/ttyUSB0", summary_s=60.0)
    for second in range(0, 185, 5):  # a retry every 5 s (the backoff's ceiling)
        failures.failed("No such file or directory", float(second))
    failures.opened(190.0)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 4  # the first failure, then at 60, 120 and 180 s
    assert warnings[0] == "device /dev/ttyUSB0: cannot open: No such file or directory (retrying)"
    assert warnings[1].startswith(
        "device /dev/ttyUSB0: still cannot open: 12 failed attempt(s) in the last 60s, "
        "13 since 60s ago"
    )
    debug = [r for r in caplog.records if r.levelno == logging.DEBUG]
    assert len(debug) == 37 - 4
    info = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert info == ["device /dev/ttyUSB0: opened after 37 failed attempt(s) over 190.0s"]
    assert all("\n" not in r.getMessage() and r.exc_info is None for r in caplog.records)


def test_a_new_outage_starts_over_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="farmhand.hardware.serialsource")
    failures = OpenFailures("loop://")
    failures.opened(0.0)  # a first open that worked: nothing to say
    failures.failed("gone", 10.0)
    failures.opened(11.0)
    failures.failed("gone again", 500.0)
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "device loop://: cannot open: gone (retrying)",
        "device loop://: opened after 1 failed attempt(s) over 1.0s",
        "device loop://: cannot open: gone again (retrying)",
    ]
