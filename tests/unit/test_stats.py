"""Drinking sessions and pour stats, pour by pour, with the times passed in (no clock)."""

from __future__ import annotations

import calendar

import pytest

from farmhand.master.devices.stats import PourStats
from models.devicestore import PourRecord

pytestmark = pytest.mark.timeout(10)

# Monday 2026-11-30 20:00 UTC
MONDAY_8PM = float(calendar.timegm((2026, 11, 30, 20, 0, 0)))
MIN = 60.0


def pour(
    n: int, at: float, ml: float, user: str | None = "alice", keg: int | None = 1
) -> PourRecord:
    return PourRecord(
        id=n, tap="tap1", keg_id=keg, username=user, ticks=int(ml * 2.724), volume_ml=ml,
        start=at, end=at + 20,
    )  # fmt: skip


def test_pours_closer_than_the_gap_are_one_session() -> None:
    stats = PourStats(gap_s=90 * MIN)
    first = stats.add(pour(1, MONDAY_8PM, 300))
    assert stats.add(pour(2, MONDAY_8PM + 89 * MIN, 200, "bob")) is first
    later = stats.add(pour(3, MONDAY_8PM + 89 * MIN + 20 + 91 * MIN, 100))
    assert later is not first and later.id == 2
    [newest, oldest] = stats.session_list(10)
    assert newest["id"] == 2 and newest["pours"] == 1
    assert oldest["drinkers"] == ["alice", "bob"] and oldest["volume_ml"] == 500


def test_totals_per_system_keg_and_user() -> None:
    stats = PourStats()
    stats.add(pour(1, MONDAY_8PM, 300))
    stats.add(pour(2, MONDAY_8PM + 60, 450, user=None))  # the guest
    stats.add(pour(3, MONDAY_8PM + 24 * 3600, 120, keg=2))  # Tuesday, a new session
    system = stats.get(("system", None))
    assert system["total_volume_ml"] == 870 and system["total_pours"] == 3
    assert system["volume_by_drinker"] == {"alice": 420, "guest": 450}
    assert system["volume_by_weekday"]["mon"] == 750 and system["volume_by_weekday"]["tue"] == 120
    assert system["largest_pour_ml"] == 450 and system["sessions"] == 2
    assert stats.get(("keg", 1))["total_volume_ml"] == 750
    assert stats.get(("keg", 1))["sessions"] == 1
    alice = stats.get(("user", "alice"))
    assert alice["total_pours"] == 2 and alice["sessions"] == 2
    assert stats.get(("user", "nobody"))["total_pours"] == 0


def test_replaying_stored_pours_gives_the_same_sessions() -> None:
    pours = [pour(n, MONDAY_8PM + n * 100 * MIN, 100 + n) for n in range(1, 6)]
    live = PourStats()
    for p in pours:
        live.add(p)
    replayed = PourStats()
    replayed.load(list(reversed(pours)))  # the store lists newest first
    assert replayed.session_list(10) == live.session_list(10)
    assert replayed.get(("system", None)) == live.get(("system", None))
