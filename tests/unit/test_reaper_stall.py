"""The heartbeat reaper when the master itself stalls (SIGSTOP, a long GC pause, a frozen VM):
silence counts only while the master was running, so its own stall declares nobody dead.
Driven by a fake clock; the sweep cadence is the reaper's interval, as its ticker runs it."""

from __future__ import annotations

import pytest

from farmhand.master.clock import FakeClock
from farmhand.master.events import EventBus
from farmhand.master.reaper import HeartbeatReaper
from farmhand.master.registry import ClientRegistry, RuntimeClient
from tests.unit.test_registry import FakeConnection, connect

pytestmark = pytest.mark.fast

TIMEOUT_S = 1.5
INTERVAL_S = 0.25


def setup() -> tuple[ClientRegistry, FakeClock, HeartbeatReaper]:
    clock = FakeClock()
    registry = ClientRegistry(EventBus())
    reaper = HeartbeatReaper(
        registry, timeout_s=TIMEOUT_S, interval_s=INTERVAL_S, mono=clock.mono, wall=clock.wall
    )
    return registry, clock, reaper


def run_for(
    seconds: float,
    clock: FakeClock,
    reaper: HeartbeatReaper,
    registry: ClientRegistry,
    beating: list[RuntimeClient],
) -> list[str]:
    """Sweep on time for `seconds` while `beating` clients heartbeat; the names reaped."""
    reaped: list[str] = []
    for _ in range(round(seconds / INTERVAL_S)):
        clock.advance(INTERVAL_S)
        for client in beating:
            registry.heard_from(client, clock.wall(), clock.mono())
        reaped += reaper.run_once(clock.mono(), clock.wall())
    return reaped


def test_a_stall_of_the_master_declares_nobody_dead() -> None:
    registry, clock, reaper = setup()
    one, _ = connect(registry, clock, "w1", FakeConnection("w1"))
    two, _ = connect(registry, clock, "w2", FakeConnection("w2"))
    assert run_for(1.0, clock, reaper, registry, [one, two]) == []
    # The master is stopped for 60 s: nobody is read, nothing runs, then the sweep comes first.
    clock.advance(60.0)
    assert reaper.run_once(clock.mono(), clock.wall()) == []
    assert one.online and two.online
    assert one.connection.closed_because is None
    # Their heartbeats, waiting in the sockets, are read next: everyone stays online.
    assert run_for(3.0, clock, reaper, registry, [one, two]) == []
    assert one.online and two.online


def test_a_client_that_died_during_the_stall_is_reaped_after_the_timeout_of_running_time() -> None:
    registry, clock, reaper = setup()
    alive, _ = connect(registry, clock, "alive")
    dead, _ = connect(registry, clock, "dead")
    assert run_for(1.0, clock, reaper, registry, [alive, dead]) == []
    clock.advance(60.0)
    assert reaper.run_once(clock.mono(), clock.wall()) == []
    # `dead` sent nothing during the stall: it goes once it was silent TIMEOUT_S of running time.
    assert run_for(TIMEOUT_S - INTERVAL_S, clock, reaper, registry, [alive]) == []
    assert run_for(2 * INTERVAL_S, clock, reaper, registry, [alive]) == ["dead"]
    assert alive.online and not dead.online


def test_silence_before_the_stall_still_counts() -> None:
    registry, clock, reaper = setup()
    connect(registry, clock, "quiet")
    # 1 s of silence, then a 60 s stall, then 0.75 s more: 1.75 s of running time > 1.5 s.
    assert run_for(1.0, clock, reaper, registry, []) == []
    clock.advance(60.0)
    assert reaper.run_once(clock.mono(), clock.wall()) == []
    assert run_for(0.75, clock, reaper, registry, []) == ["quiet"]


def test_several_stalls_add_up_and_a_late_sweep_within_tolerance_is_no_stall() -> None:
    registry, clock, reaper = setup()
    one, _ = connect(registry, clock, "w1")
    assert run_for(0.5, clock, reaper, registry, [one]) == []
    for _ in range(3):
        clock.advance(10.0)
        assert reaper.run_once(clock.mono(), clock.wall()) == []
        assert run_for(0.25, clock, reaper, registry, []) == []
    assert one.online
    # Sweeps one interval late (two intervals apart) are ordinary jitter, not a stall.
    registry.heard_from(one, clock.wall(), clock.mono())
    for _ in range(3):
        clock.advance(2 * INTERVAL_S)
        assert reaper.run_once(clock.mono(), clock.wall()) == []
    clock.advance(2 * INTERVAL_S)
    assert reaper.run_once(clock.mono(), clock.wall()) == ["w1"]
