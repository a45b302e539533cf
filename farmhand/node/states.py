"""The life of one supervised process: states, the transition table, and a pure `Lifecycle`.

Theory of operation (after supervisord): an operator's `start` spawns the process (STARTING).
If it is still alive `start_secs` later the clock promotes it to RUNNING. If it dies before that,
the start failed: it waits in BACKOFF (1, 2, 4 … up to `backoff_max_s`) and is spawned again,
until `start_retries` failures in a row make it FATAL, where it stays until an operator starts
it again. A process that ran long and then died is EXITED and, by its restart policy, spawned
again at once. An agent that exits with EXIT_RESTART (75: the master's clients.restart) is
spawned again at once whatever its policy; one that exits with EXIT_STOP (76: clients.stop)
stays EXITED. `stop` sends SIGTERM (STOPPING) and SIGKILL after `stop_timeout_s`; the child's
exit then leaves it STOPPED. No I/O and no clock here: time is passed in, actions come out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from farmhand.agent.exits import EXIT_RESTART, EXIT_STOP
from protocol.backoff import exponential_delay

log = logging.getLogger(__name__)


class State(StrEnum):
    STOPPED = "stopped"
    STARTING = "starting"
    RUNNING = "running"
    BACKOFF = "backoff"
    STOPPING = "stopping"
    EXITED = "exited"
    FATAL = "fatal"


class Trigger(StrEnum):
    START = "start"  # operator: node start, proc.start, reload, or a pending restart
    STARTED = "started"  # clock: alive for start_secs
    FAILED = "failed"  # child: died (or could not be spawned) within start_secs
    GAVE_UP = "gave_up"  # child: the start_retries-th failed start in a row
    RETRY = "retry"  # clock: the backoff delay has passed
    DIED = "died"  # child: exited after running long enough
    AUTORESTART = "autorestart"  # policy: the restart policy asks for a new process
    STOP = "stop"  # operator: proc.stop, restart, reload, node shutdown
    REAPED = "reaped"  # child: exited after being told to stop


# (from, trigger) → to. Anything not in the table is a bug in the caller, not a peer's fault.
TRANSITIONS: dict[tuple[State, Trigger], State] = {
    (State.STOPPED, Trigger.START): State.STARTING,
    (State.EXITED, Trigger.START): State.STARTING,
    (State.FATAL, Trigger.START): State.STARTING,
    (State.BACKOFF, Trigger.START): State.STARTING,
    (State.STARTING, Trigger.STARTED): State.RUNNING,
    (State.STARTING, Trigger.FAILED): State.BACKOFF,
    (State.STARTING, Trigger.GAVE_UP): State.FATAL,
    (State.BACKOFF, Trigger.RETRY): State.STARTING,
    (State.STARTING, Trigger.DIED): State.EXITED,
    (State.RUNNING, Trigger.DIED): State.EXITED,
    (State.EXITED, Trigger.AUTORESTART): State.STARTING,
    (State.STARTING, Trigger.STOP): State.STOPPING,
    (State.RUNNING, Trigger.STOP): State.STOPPING,
    (State.BACKOFF, Trigger.STOP): State.STOPPED,
    (State.EXITED, Trigger.STOP): State.STOPPED,
    (State.FATAL, Trigger.STOP): State.STOPPED,
    (State.STOPPING, Trigger.REAPED): State.STOPPED,
}

# States in which a child process exists (or is being spawned).
ALIVE = frozenset({State.STARTING, State.RUNNING, State.STOPPING})
RESTART_POLICIES = ("always", "on-failure", "never")


class Action(StrEnum):
    """What the caller must do after a step: the Lifecycle never touches a process itself."""

    NOTHING = "nothing"
    SPAWN = "spawn"
    TERMINATE = "terminate"  # SIGTERM to the process group
    KILL = "kill"  # SIGKILL to the process group


@dataclass(frozen=True, slots=True)
class Policy:
    start_secs: float = 1.0
    start_retries: int = 5
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 60.0
    stop_timeout_s: float = 10.0
    restart: str = "always"  # always | on-failure | never (after a process that ran long exits)


def backoff_delay(failures: int, initial_s: float, maximum_s: float) -> float:
    """Delay before the retry that follows the `failures`-th failed start: 1, 2, 4 … maximum
    (the one backoff, without jitter: `node.py status` shows when the next try comes)."""
    return exponential_delay(failures - 1, initial_s, maximum_s)


Listener = Callable[["Lifecycle", State, State], None]


class Lifecycle:
    """One agent's supervision state. Every method takes `now` (monotonic seconds)."""

    def __init__(self, name: str, policy: Policy, listener: Listener | None = None) -> None:
        self.name = name
        self.policy = policy
        self.listener = listener
        self.state = State.STOPPED
        self.pid: int | None = None
        self.failures = 0  # failed starts in a row
        self.spawns = 0
        self.last_exit: int | None = None
        self.error: str | None = None  # why the last spawn failed, if it did
        self.started_at: float | None = None
        self.retry_at: float | None = None
        self.stop_deadline: float | None = None
        self.killed = False
        self.start_pending = False  # a restart: start again once stopped

    @property
    def restarts(self) -> int:
        return max(0, self.spawns - 1)

    def _fire(self, trigger: Trigger, now: float) -> None:
        old = self.state
        new = TRANSITIONS.get((old, trigger))
        if new is None:
            raise RuntimeError(f"agent {self.name}: no transition from {old} on {trigger}")
        self.state = new
        log.info(
            "agent %s: %s -> %s on %s (pid %s, failures %d, last exit %s)",
            self.name,
            old,
            new,
            trigger,
            self.pid,
            self.failures,
            self.last_exit,
        )
        if self.listener is not None:
            self.listener(self, old, new)

    # -- operator -----------------------------------------------------------------------------
    def start(self, now: float) -> Action:
        if self.state in (State.STARTING, State.RUNNING):
            return Action.NOTHING
        if self.state is State.STOPPING:
            self.start_pending = True
            return Action.NOTHING
        self.failures = 0  # an operator's start forgives the failures before it
        self._fire(Trigger.START, now)
        return Action.SPAWN

    def stop(self, now: float) -> Action:
        self.start_pending = False
        if self.state in (State.STARTING, State.RUNNING):
            self._fire(Trigger.STOP, now)
            self.stop_deadline = now + self.policy.stop_timeout_s
            self.killed = False
            return Action.TERMINATE
        if self.state in (State.BACKOFF, State.EXITED, State.FATAL):
            self._fire(Trigger.STOP, now)
        return Action.NOTHING

    def restart(self, now: float) -> Action:
        if self.state in (State.STARTING, State.RUNNING):
            action = self.stop(now)
            self.start_pending = True
            return action
        return self.start(now)

    # -- the child ----------------------------------------------------------------------------
    def spawned(self, now: float, pid: int) -> None:
        self.pid = pid
        self.spawns += 1
        self.started_at = now
        self.error = None

    def spawn_failed(self, now: float, error: str) -> Action:
        """Popen itself failed (no such program…): a failed start like any other."""
        self.spawns += 1
        self.started_at = now
        action = self.exited(now, None)
        self.error = error
        return action

    def exited(self, now: float, code: int | None) -> Action:
        self.pid = None
        self.last_exit = code
        ran_s = now - (self.started_at if self.started_at is not None else now)
        self.started_at = None
        if self.state is State.STOPPING:
            self._fire(Trigger.REAPED, now)
            self.stop_deadline = None
            if self.start_pending:
                self.start_pending = False
                return self.start(now)
            return Action.NOTHING
        if code in (EXIT_RESTART, EXIT_STOP) and self.state in (State.STARTING, State.RUNNING):
            # The master's order, not a failure: never counted as a failed start.
            self.failures = 0
            self._fire(Trigger.DIED, now)
            if code == EXIT_STOP:
                log.info("agent %s: stopped by the master (exit %d)", self.name, code)
                return Action.NOTHING
            log.info("agent %s: restart asked by the master (exit %d)", self.name, code)
            self._fire(Trigger.AUTORESTART, now)
            return Action.SPAWN
        if self.state is State.STARTING and ran_s < self.policy.start_secs:
            self.failures += 1
            if self.failures >= self.policy.start_retries:
                self._fire(Trigger.GAVE_UP, now)
                log.warning(
                    "agent %s: gave up after %d failed starts in a row", self.name, self.failures
                )
                return Action.NOTHING
            delay = backoff_delay(
                self.failures, self.policy.backoff_initial_s, self.policy.backoff_max_s
            )
            self.retry_at = now + delay
            self._fire(Trigger.FAILED, now)
            log.info("agent %s: retrying in %gs", self.name, delay)
            return Action.NOTHING
        # Ran long enough: not a failed start, so the restart is immediate.
        self.failures = 0
        self._fire(Trigger.DIED, now)
        if self.policy.restart == "always" or (self.policy.restart == "on-failure" and code != 0):
            self._fire(Trigger.AUTORESTART, now)
            return Action.SPAWN
        return Action.NOTHING

    # -- the clock ----------------------------------------------------------------------------
    def tick(self, now: float) -> Action:
        if self.state is State.STARTING and self.started_at is not None:
            if now - self.started_at >= self.policy.start_secs:
                self.failures = 0
                self._fire(Trigger.STARTED, now)
        elif self.state is State.BACKOFF and self.retry_at is not None and now >= self.retry_at:
            self.retry_at = None
            self._fire(Trigger.RETRY, now)
            return Action.SPAWN
        elif (
            self.state is State.STOPPING
            and not self.killed
            and self.stop_deadline is not None
            and now >= self.stop_deadline
        ):
            self.killed = True
            log.warning(
                "agent %s: pid %s still alive %gs after SIGTERM: SIGKILL",
                self.name,
                self.pid,
                self.policy.stop_timeout_s,
            )
            return Action.KILL
        return Action.NOTHING

    def view(self, now: float) -> dict[str, Any]:
        """The report row (`procs.list`), without the node name."""
        uptime = None
        if self.state in ALIVE and self.started_at is not None:
            uptime = round(now - self.started_at, 3)
        view: dict[str, Any] = {
            "agent": self.name,
            "state": str(self.state),
            "pid": self.pid,
            "uptime_s": uptime,
            "restarts": self.restarts,
            "last_exit": self.last_exit,
            "failures": self.failures,
        }
        if self.state is State.BACKOFF and self.retry_at is not None:
            view["retry_in_s"] = round(max(0.0, self.retry_at - now), 3)
        if self.error is not None:
            view["error"] = self.error
        return view
