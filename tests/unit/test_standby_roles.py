"""The standby masters' role machine (farmhand/master/standby.py) with the fake clock: every row
of the transition table, the rows it does not have, when a master acts next, and the keeper
driving it against a lease that answers as told (no database, no sleeps)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from farmhand.master.clock import FakeClock
from farmhand.master.standby import (
    TRANSITIONS,
    BadTransition,
    LeaseKeeper,
    Outcome,
    Role,
    RoleMachine,
)
from models.lease import LeaseView

pytestmark = pytest.mark.timeout(10)

# The table as the module's docstring tells it: (role, outcome) → role.
EXPECTED = [
    (Role.STANDBY, Outcome.TOOK_OVER, Role.ACTIVE),
    (Role.STANDBY, Outcome.HELD, Role.STANDBY),
    (Role.STANDBY, Outcome.FAILED, Role.STANDBY),
    (Role.STANDBY, Outcome.STOP, Role.STOPPED),
    (Role.ACTIVE, Outcome.RENEWED, Role.ACTIVE),
    (Role.ACTIVE, Outcome.FAILED, Role.ACTIVE),  # unreachable: serve reads, writes fail anyway
    (Role.ACTIVE, Outcome.TAKEN, Role.FENCED),
    (Role.ACTIVE, Outcome.WRITE_FENCED, Role.FENCED),
    (Role.ACTIVE, Outcome.EXPIRED, Role.FENCED),  # unreachable for the whole lease
    (Role.ACTIVE, Outcome.STOP, Role.STOPPED),
    (Role.FENCED, Outcome.STOP, Role.STOPPED),
]


def test_the_table_is_exactly_the_documented_one() -> None:
    assert {(role, outcome): new for role, outcome, new in EXPECTED} == TRANSITIONS


@pytest.mark.parametrize(("role", "outcome", "new"), EXPECTED)
def test_each_transition(role: Role, outcome: Outcome, new: Role) -> None:
    machine = RoleMachine(lease_s=8.0, poll_s=1.0, role=role, generation=3)
    assert machine.record(outcome, 100.0, generation=4) is new
    assert machine.role is new


@pytest.mark.parametrize(
    ("role", "outcome"),
    [(role, outcome) for role in Role for outcome in Outcome if (role, outcome) not in TRANSITIONS],
)
def test_outcomes_the_table_does_not_have_are_refused(role: Role, outcome: Outcome) -> None:
    machine = RoleMachine(role=role)
    with pytest.raises(BadTransition):
        machine.record(outcome, 0.0)
    assert machine.role is role


def test_a_standby_polls_and_an_active_master_renews_four_times_per_lease() -> None:
    clock = FakeClock()
    machine = RoleMachine(lease_s=8.0, poll_s=1.0)
    assert machine.due(clock.mono())
    machine.record(Outcome.HELD, clock.mono())
    assert not machine.due(clock.mono())
    clock.advance(1.0)
    assert machine.due(clock.mono())
    machine.record(Outcome.TOOK_OVER, clock.mono(), generation=7)
    assert machine.generation == 7
    assert machine.lease_left_s(clock.mono()) == 8.0
    clock.advance(1.9)
    assert not machine.due(clock.mono())
    clock.advance(0.1)
    assert machine.due(clock.mono())  # lease_s / 4
    machine.record(Outcome.FAILED, clock.mono())
    assert machine.failures == 1
    assert machine.lease_left_s(clock.mono()) == pytest.approx(6.0)  # counts from the last renewal
    clock.advance(2.0)
    machine.record(Outcome.RENEWED, clock.mono())
    assert machine.failures == 0 and machine.lease_left_s(clock.mono()) == 8.0


def test_nothing_is_due_once_fenced_or_stopped() -> None:
    machine = RoleMachine(role=Role.ACTIVE, generation=1)
    machine.record(Outcome.TAKEN, 0.0)
    assert not machine.due(1e9) and machine.lease_left_s(1e9) is None
    machine.record(Outcome.STOP, 0.0)
    assert not machine.due(1e9)


class ScriptedLease:
    """A LeaseStore that answers from lists, and records what it was asked."""

    def __init__(self, takeovers: list[int | None], renewals: list[bool | Exception]) -> None:
        self.takeovers = takeovers
        self.renewals = renewals
        self.calls: list[tuple[str, Any]] = []
        self.during_renew: Any = lambda: None

    def try_take_over(self, holder: str, lease_s: float) -> int | None:
        self.calls.append(("take_over", holder))
        return self.takeovers.pop(0)

    def renew(self, generation: int, lease_s: float) -> bool:
        self.calls.append(("renew", generation))
        self.during_renew()
        answer = self.renewals.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def release(self, generation: int) -> None:
        self.calls.append(("release", generation))

    def view(self) -> LeaseView:
        return LeaseView(5, "other", 1_700_000_000.0, 0.0, 0.0)

    def drop(self) -> None:
        self.calls.append(("drop", None))

    def close(self) -> None:
        self.calls.append(("close", None))


def keeper_for(lease: ScriptedLease, clock: FakeClock) -> LeaseKeeper:
    return LeaseKeeper(lease, "me", 8.0, poll_s=1.0, mono=clock.mono)  # type: ignore[arg-type]


def test_keeper_takes_over_renews_and_steps_down_when_taken_over() -> None:
    clock = FakeClock()
    lease = ScriptedLease(takeovers=[None, 5], renewals=[True, OSError("gone"), False])
    keeper = keeper_for(lease, clock)
    lost: list[str] = []
    keeper._on_lost = lost.append
    assert keeper.try_once() is Role.STANDBY
    assert keeper.try_once() is Role.ACTIVE and keeper.machine.generation == 5
    assert keeper.view()["role"] == "active" and keeper.view()["holder"] == "me"
    assert keeper.view()["last_takeover"] == "2023-11-14T22:13:20.000Z"
    assert keeper.renew_once() is Role.ACTIVE
    assert keeper.renew_once() is Role.ACTIVE  # the database did not answer: still active
    assert ("drop", None) in lease.calls  # that connection is not reused
    assert not lost
    assert keeper.renew_once() is Role.FENCED
    assert lost == ["another master took over the lease"]
    keeper.stop()
    assert ("release", 5) not in lease.calls  # a fenced master has nothing to release


def test_keeper_steps_down_when_a_write_was_fenced_and_releases_on_a_clean_stop() -> None:
    clock = FakeClock()
    keeper = keeper_for(ScriptedLease(takeovers=[2], renewals=[]), clock)
    lost: list[str] = []
    keeper._on_lost = lost.append
    keeper.try_once()
    keeper.write_fenced()
    assert keeper.role is Role.FENCED and lost
    keeper.write_fenced()  # a second refused write changes nothing
    assert len(lost) == 1

    lease = ScriptedLease(takeovers=[3], renewals=[])
    keeper = keeper_for(lease, clock)
    keeper.try_once()
    keeper.stop()
    assert ("release", 3) in lease.calls and keeper.role is Role.STOPPED


def test_a_renewal_answered_after_a_write_was_fenced_changes_nothing() -> None:
    """The renewal runs in the lease's thread while the hub goes on: a write may find the
    takeover first. Its answer (refused) then finds the master fenced already."""
    clock = FakeClock()
    lease = ScriptedLease(takeovers=[4], renewals=[False])
    keeper = keeper_for(lease, clock)
    lost: list[str] = []
    keeper._on_lost = lost.append
    keeper.try_once()
    lease.during_renew = keeper.write_fenced
    assert keeper.renew_once() is Role.FENCED
    assert lost == ["a write found another master's lease generation"]


def test_an_active_master_that_cannot_renew_for_the_whole_lease_steps_down() -> None:
    """Found in review: a master cut from its database kept its agents after a standby took
    over at the lease's expiry. It now steps down when the lease runs out by its own clock."""
    clock = FakeClock()
    failures: list[bool | Exception] = [OSError("unreachable")] * 4
    keeper = keeper_for(ScriptedLease(takeovers=[3], renewals=failures), clock)
    lost: list[str] = []
    keeper._on_lost = lost.append
    keeper.try_once()
    for _ in range(3):  # at 2, 4 and 6 s of an 8 s lease: still active, serving reads
        clock.advance(2.0)
        assert keeper.renew_once() is Role.ACTIVE
    assert keeper.machine.next_at == pytest.approx(clock.mono() + 2.0)
    clock.advance(2.0)  # the lease ran out with no renewal answered
    assert keeper.renew_once() is Role.FENCED
    assert lost and "no renewal of the lease answered for 8s" in lost[0]


def test_the_next_renewal_is_due_no_later_than_the_lease_runs_out() -> None:
    machine = RoleMachine(lease_s=8.0, poll_s=1.0)
    machine.record(Outcome.TOOK_OVER, 0.0, generation=1)
    machine.record(Outcome.FAILED, 7.0)  # a failure answered late, 1 s before the expiry
    assert machine.next_at == pytest.approx(8.0)


def test_a_renewal_left_unanswered_is_not_waited_for_past_the_lease() -> None:
    """A partition drops packets: the renewal's query may hang for minutes. The keeper waits
    only until the lease runs out, steps down, and its stop does not wait for the stuck call."""
    clock = FakeClock()
    lease = ScriptedLease(takeovers=[4], renewals=[True])
    gate = threading.Event()
    lease.during_renew = gate.wait
    keeper = keeper_for(lease, clock)
    lost: list[str] = []
    keeper._on_lost = lost.append
    keeper.try_once()
    clock.advance(8.0 - 1.2)  # 1.2 s of lease left, by the keeper's clock
    began = time.monotonic()
    try:
        assert keeper.renew_once() is Role.FENCED
        waited = time.monotonic() - began
        assert 1.1 < waited < 3.0, waited
        assert lost and "no answer within 1.2s" in lost[0]
        began = time.monotonic()
        keeper.stop()
        assert time.monotonic() - began < 2.0
        assert ("close", None) not in lease.calls  # queued behind the stuck call: not asked
    finally:
        gate.set()
