"""MeterTracker (docs/devices.md, docs/kegboard.md): meters are odometers. The first reading of a
meter after its agent connects sets the baseline; increases of 1 to 1000 ticks are poured beer;
a reading that goes down (the board reset) or jumps by more than 1000 only moves the baseline."""

from __future__ import annotations

import pytest

from farmhand.master.devices.meters import MAX_DELTA_TICKS, MeterTracker

pytestmark = pytest.mark.fast


@pytest.fixture
def meters() -> MeterTracker:
    return MeterTracker()


def test_the_first_reading_sets_the_baseline(meters: MeterTracker) -> None:
    assert meters.update("keg1", "flow0", 5000) == 0
    assert meters.update("keg1", "flow0", 5010) == 10


def test_a_first_reading_of_zero_is_a_baseline_too(meters: MeterTracker) -> None:
    assert meters.update("keg1", "flow0", 0) == 0
    assert meters.update("keg1", "flow0", 545) == 545


@pytest.mark.parametrize("delta", [1, 2, 500, 999, MAX_DELTA_TICKS])
def test_increases_of_1_to_1000_are_flow(meters: MeterTracker, delta: int) -> None:
    meters.update("keg1", "flow0", 100)
    assert meters.update("keg1", "flow0", 100 + delta) == delta


def test_deltas_add_up_reading_after_reading(meters: MeterTracker) -> None:
    meters.update("keg1", "flow0", 0)
    deltas = [meters.update("keg1", "flow0", ticks) for ticks in (4, 8, 12, 88, 1088)]
    assert deltas == [4, 4, 4, 76, 1000]


def test_an_unchanged_reading_adds_nothing(meters: MeterTracker) -> None:
    meters.update("keg1", "flow0", 42)
    assert meters.update("keg1", "flow0", 42) == 0
    assert meters.update("keg1", "flow0", 43) == 1


def test_a_drop_is_a_board_reset_and_re_baselines(meters: MeterTracker) -> None:
    meters.update("keg1", "flow0", 5000)
    assert meters.update("keg1", "flow0", 3) == 0  # the board restarted counting from zero
    assert meters.update("keg1", "flow0", 10) == 7  # counted from the new baseline


@pytest.mark.parametrize("jump", [MAX_DELTA_TICKS + 1, 5000, 10**9])
def test_a_jump_over_1000_re_baselines(meters: MeterTracker, jump: int) -> None:
    meters.update("keg1", "flow0", 100)
    assert meters.update("keg1", "flow0", 100 + jump) == 0
    assert meters.update("keg1", "flow0", 100 + jump + 20) == 20


def test_meters_are_tracked_per_agent_and_meter(meters: MeterTracker) -> None:
    meters.update("keg1", "flow0", 100)
    meters.update("keg1", "flow1", 7000)
    meters.update("keg2", "flow0", 50)
    assert meters.update("keg1", "flow0", 110) == 10
    assert meters.update("keg1", "flow1", 7001) == 1
    assert meters.update("keg2", "flow0", 60) == 10
    assert meters.update("keg3", "flow0", 60) == 0  # another agent: its own baseline


def test_forget_agent_makes_the_next_reading_a_new_baseline(meters: MeterTracker) -> None:
    meters.update("keg1", "flow0", 100)
    meters.update("keg1", "flow1", 200)
    meters.update("keg2", "flow0", 300)
    meters.forget_agent("keg1")
    # Would have been +10 each: after a reconnect they only set baselines.
    assert meters.update("keg1", "flow0", 110) == 0
    assert meters.update("keg1", "flow1", 210) == 0
    assert meters.update("keg1", "flow0", 115) == 5
    # Other agents keep theirs.
    assert meters.update("keg2", "flow0", 310) == 10


def test_forget_agent_matches_whole_names_only(meters: MeterTracker) -> None:
    meters.update("keg1", "flow0", 100)
    meters.update("keg10", "flow0", 100)
    meters.forget_agent("keg1")
    assert meters.update("keg10", "flow0", 101) == 1


def test_forgetting_an_unknown_agent_is_harmless(meters: MeterTracker) -> None:
    meters.forget_agent("nobody")
    meters.update("keg1", "flow0", 1)
    assert meters.update("keg1", "flow0", 2) == 1
