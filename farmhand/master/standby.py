"""Standby masters: which of the masters sharing one PostgreSQL database is the active one.

Theory of operation. Every master on a postgresql:// database starts as a STANDBY: it opens no
port and asks for the master lease (models/lease.py) every POLL_S. The one that gets it is
ACTIVE: it loads the state as a restart does, opens its ports, fences its storage with the
lease's generation and renews the lease every lease_s / 4. A renewal the database refuses
(another master took over) or a write the fence refused means FENCED: the master closes its
ports at once and writes nothing more; master.py then starts over as a standby. A renewal that
fails (database unreachable) changes nothing by itself while the lease runs: the master keeps
serving reads, its writes fail anyway. Once the lease has run out by this master's own clock
(lease_s from the sending of the last renewal that worked, which is never later than the
database's expiry) with no renewal answered, it is EXPIRED, which fences it too: a standby may
take over now, and the agents must leave this master for that one. A renewal is not waited
for past the lease (a partition may leave it unanswered for minutes); one sent after the lease
ran out (a master woken from a freeze) is given LAST_ASK_S to learn whether it was taken over.
A clean stop releases the lease so that a standby takes over at once. SQLite masters have no
lease and are always active.

`RoleMachine` is the table below with the time passed in; `LeaseKeeper` drives it with gevent and
runs the lease's statements in a thread of their own.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import gevent
from gevent.event import Event
from gevent.threadpool import ThreadPool

from models.lease import LeaseStore, LeaseView
from protocol.times import iso_utc

log = logging.getLogger(__name__)

DEFAULT_LEASE_S = 10.0
POLL_S = 1.0  # how often a standby asks for the lease
LAST_ASK_S = 1.0  # how long a renewal sent after the lease ran out is waited for
STOP_TIMEOUT_S = 5.0  # at most this long for releasing the lease and closing its connection


class Role(StrEnum):
    STANDBY = "standby"
    ACTIVE = "active"
    FENCED = "fenced"
    STOPPED = "stopped"


class Outcome(StrEnum):
    TOOK_OVER = "took_over"  # the lease is ours, with a new generation
    HELD = "held"  # another master holds the lease
    RENEWED = "renewed"
    TAKEN = "taken"  # the renewal was refused: another master has a newer generation
    WRITE_FENCED = "write_fenced"  # the storage's generation check failed
    FAILED = "failed"  # the database did not answer
    EXPIRED = "expired"  # no renewal answered for the whole lease: a standby may take over
    STOP = "stop"


TRANSITIONS: dict[tuple[Role, Outcome], Role] = {
    (Role.STANDBY, Outcome.TOOK_OVER): Role.ACTIVE,
    (Role.STANDBY, Outcome.HELD): Role.STANDBY,
    (Role.STANDBY, Outcome.FAILED): Role.STANDBY,
    (Role.STANDBY, Outcome.STOP): Role.STOPPED,
    (Role.ACTIVE, Outcome.RENEWED): Role.ACTIVE,
    (Role.ACTIVE, Outcome.FAILED): Role.ACTIVE,
    (Role.ACTIVE, Outcome.TAKEN): Role.FENCED,
    (Role.ACTIVE, Outcome.WRITE_FENCED): Role.FENCED,
    (Role.ACTIVE, Outcome.EXPIRED): Role.FENCED,
    (Role.ACTIVE, Outcome.STOP): Role.STOPPED,
    (Role.FENCED, Outcome.STOP): Role.STOPPED,
}


class BadTransition(Exception):
    pass


class NoAnswer(TimeoutError):
    """A lease call not answered in the time it was given (for a renewal: the rest of the
    lease, so the lease has run out)."""


@dataclass
class RoleMachine:
    """The role and when to act next; `record` applies one outcome at time `now` (mono)."""

    lease_s: float = DEFAULT_LEASE_S
    poll_s: float = POLL_S
    role: Role = Role.STANDBY
    generation: int | None = None
    next_at: float = 0.0
    # When the last renewal that worked was sent: the lease runs at least lease_s from then.
    renewed_at: float | None = None
    failures: int = 0

    @property
    def renew_s(self) -> float:
        return self.lease_s / 4

    def due(self, now: float) -> bool:
        return self.role in (Role.STANDBY, Role.ACTIVE) and now >= self.next_at

    def lease_left_s(self, now: float) -> float | None:
        """How long the lease surely runs (by this master's clock); None unless active."""
        if self.role is not Role.ACTIVE or self.renewed_at is None:
            return None
        return self.renewed_at + self.lease_s - now

    def record(self, outcome: Outcome, now: float, generation: int | None = None) -> Role:
        """Apply `outcome` (of a request sent at `now`); the new role. BadTransition when the
        table has no such row (e.g. a renewal recorded by a standby)."""
        new = TRANSITIONS.get((self.role, outcome))
        if new is None:
            raise BadTransition(f"{outcome} while {self.role}")
        self.role = new
        if outcome is Outcome.TOOK_OVER:
            self.generation = generation
        if outcome in (Outcome.TOOK_OVER, Outcome.RENEWED):
            self.renewed_at = now
            self.failures = 0
        if outcome is Outcome.FAILED:
            self.failures += 1
        interval = self.renew_s if new is Role.ACTIVE else self.poll_s
        self.next_at = now + interval
        if new is Role.ACTIVE and self.renewed_at is not None:
            self.next_at = min(self.next_at, self.renewed_at + self.lease_s)  # act at expiry
        return new


def _capture(fn: Callable[..., Any], args: tuple[Any, ...]) -> tuple[bool, Any]:
    try:
        return True, fn(*args)
    except Exception as exc:
        return False, exc


def holder_name(host: str, port: int) -> str:
    """How the lease names this master: its host, port and process."""
    return f"{socket.gethostname()} {host}:{port} pid {os.getpid()}"


class LeaseKeeper:
    """Drives a RoleMachine against the database: waits as a standby, renews while active, and
    calls `on_lost` (in the hub) when this master is fenced."""

    def __init__(
        self,
        lease: LeaseStore,
        holder: str,
        lease_s: float = DEFAULT_LEASE_S,
        *,
        poll_s: float = POLL_S,
        mono: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lease = lease
        self.holder = holder
        self.machine = RoleMachine(lease_s=lease_s, poll_s=poll_s)
        self._mono = mono
        self._pool = ThreadPool(1)
        self._loop: gevent.Greenlet | None = None
        self._on_lost: Callable[[str], None] = lambda reason: None
        self.took_over_at: float | None = None  # database epoch seconds
        self.last_view: LeaseView | None = None
        self.lost_reason = ""
        # A call that never came back (a partition): the lease's one thread is taken for good.
        self._stuck = False

    @property
    def role(self) -> Role:
        return self.machine.role

    def _attempt(
        self, fn: Callable[..., Any], *args: Any, timeout_s: float | None = None
    ) -> tuple[bool, Any]:
        """fn(*args) in the lease's thread: (True, result) or (False, the exception), which
        comes back as a value (gevent's ThreadPool would print it through the hub). Not
        answered within `timeout_s`: (False, TimeoutError), and the thread is left stuck."""
        if self._stuck:
            return False, NoAnswer("the lease's connection is stuck in an earlier call")
        pending = self._pool.spawn(_capture, fn, args)
        try:
            ok, value = pending.get(timeout=timeout_s)
        except gevent.Timeout:
            self._stuck = True
            return False, NoAnswer(f"no answer within {timeout_s:.1f}s")
        if not ok:
            self._pool.spawn(_capture, self._lease.drop, ()).get()
        return ok, value

    # -- standby ----------------------------------------------------------------------------
    def try_once(self) -> Role:
        """One attempt to take over (a standby's poll)."""
        now = self._mono()
        ok, value = self._attempt(self._lease.try_take_over, self.holder, self.machine.lease_s)
        if not ok:
            if self.machine.failures == 0:
                log.warning("master lease: the database did not answer: %s", value)
            return self.machine.record(Outcome.FAILED, now)
        if value is None:
            return self.machine.record(Outcome.HELD, now)
        role = self.machine.record(Outcome.TOOK_OVER, now, int(value))
        self._refresh_view()
        self.took_over_at = self.last_view.acquired if self.last_view else None
        log.warning("took over as the active master (lease generation %d)", value)
        return role

    def wait_until_active(self, stop: Event, on_standby: Callable[[str], None]) -> bool:
        """As a standby until this master holds the lease (True) or `stop` is set (False).
        `on_standby(holder)` runs once, when the first attempt finds the lease held."""
        told = False
        while not stop.is_set():
            if self.try_once() is Role.ACTIVE:
                return True
            if not told and self.machine.role is Role.STANDBY:
                told = True
                self._refresh_view()
                holder = self.last_view.holder if self.last_view else "?"
                log.info("standing by: the active master is %s", holder or "?")
                on_standby(holder)
            stop.wait(max(self.machine.next_at - self._mono(), 0.0))
        self.machine.record(Outcome.STOP, self._mono())
        return False

    # -- active -----------------------------------------------------------------------------
    def start(self, on_lost: Callable[[str], None]) -> None:
        """Renew the lease in the background while active."""
        self._on_lost = on_lost
        self._loop = gevent.spawn(self._renew_loop)

    def _renew_loop(self) -> None:
        machine = self.machine
        while machine.role is Role.ACTIVE:
            gevent.sleep(max(machine.next_at - self._mono(), 0.0))
            if machine.role is not Role.ACTIVE:
                return
            self.renew_once()

    def renew_once(self) -> Role:
        machine = self.machine
        assert machine.generation is not None
        now = self._mono()
        left = machine.lease_left_s(now)
        # Waited for until the lease runs out; a master that finds it run out already (woken
        # from a freeze) still asks, briefly: the database says whether someone took over.
        ok, value = self._attempt(
            self._lease.renew,
            machine.generation,
            machine.lease_s,
            timeout_s=None if left is None else max(left, LAST_ASK_S),
        )
        if machine.role is not Role.ACTIVE:
            return machine.role  # fenced (a write found the takeover) or stopped meanwhile
        if not ok:
            if machine.failures == 0:
                log.warning("master lease: renewal failed: %s", value)
            machine.record(Outcome.FAILED, now)
            left = machine.lease_left_s(self._mono())
            if isinstance(value, NoAnswer) or (left is not None and left <= 0):
                self._lose(
                    Outcome.EXPIRED,
                    f"no renewal of the lease answered for {machine.lease_s:g}s "
                    f"(the database is unreachable: {value}); a standby may take over",
                )
            return machine.role
        if value:
            if machine.failures:
                log.info("master lease renewed again after %d failures", machine.failures)
            return machine.record(Outcome.RENEWED, now)
        self._lose(Outcome.TAKEN, "another master took over the lease")
        return machine.role

    def write_fenced(self) -> None:
        """The storage refused a write: the lease's generation is no longer ours."""
        if self.machine.role is Role.ACTIVE:
            self._lose(Outcome.WRITE_FENCED, "a write found another master's lease generation")

    def _lose(self, outcome: Outcome, reason: str) -> None:
        self.machine.record(outcome, self._mono())
        self.lost_reason = reason
        log.error("stepping down: %s (generation %s)", reason, self.machine.generation)
        self._on_lost(reason)

    def stop(self) -> None:
        """Stop renewing; an active master releases the lease so that a standby takes over
        at once. Safe to call twice."""
        was_active = self.machine.role is Role.ACTIVE
        if self.machine.role is not Role.STOPPED:
            self.machine.record(Outcome.STOP, self._mono())
        if self._loop is not None:
            self._loop.kill()
            self._loop = None
        if was_active and self.machine.generation is not None:
            ok, value = self._attempt(
                self._lease.release, self.machine.generation, timeout_s=STOP_TIMEOUT_S
            )
            if not ok:
                log.warning("master lease: could not release it: %s", value)
        if not self._stuck:
            self._attempt(self._lease.close, timeout_s=STOP_TIMEOUT_S)
        if not self._stuck:  # killing the pool waits for its thread: not for a stuck one
            self._pool.kill()

    # -- views ------------------------------------------------------------------------------
    def _refresh_view(self) -> None:
        ok, value = self._attempt(self._lease.view)
        if ok:
            self.last_view = value

    def view(self) -> dict[str, Any]:
        """The `master` part of `status`: role, lease holder and generation, last takeover."""
        lease = self.last_view
        left = self.machine.lease_left_s(self._mono())
        return {
            "role": str(self.machine.role),
            "standby_capable": True,
            "holder": self.holder if self.machine.role is Role.ACTIVE else (lease and lease.holder),
            "generation": self.machine.generation,
            "last_takeover": iso_utc(self.took_over_at) if self.took_over_at else None,
            "lease_s": self.machine.lease_s,
            "lease_left_s": round(left, 3) if left is not None else None,
        }


def always_active_view() -> dict[str, Any]:
    """`status`'s `master` part for a master without a lease (SQLite): always active."""
    return {
        "role": str(Role.ACTIVE),
        "standby_capable": False,
        "holder": None,
        "generation": None,
        "last_takeover": None,
        "lease_s": None,
        "lease_left_s": None,
    }
