"""Why an attempt ended other than by success (a task's `reason`) and the one line people read
about it (its `error`): "exit code 1", "killed by signal 9 (SIGKILL)", "timed out after 3 s
(its timeout_s)", "cannot start: …", "worker w1 lost", "job canceled". Never "exit code None".

A worker's `task.finished` names its reason (`exit`, `signal`, `timeout`, `canceled`,
`cannot-start`); one that does not (an older worker) has it read from its exit code and error.
The master itself decides `lost` (the worker vanished) and `canceled` (the operator, or a
`fail_fast` failure). Sans-IO: plain values in, plain values out.
"""

from __future__ import annotations

import signal
from enum import StrEnum


class Reason(StrEnum):
    EXIT = "exit"  # a non-zero exit code
    SIGNAL = "signal"  # killed by a signal nobody at the farm sent
    TIMEOUT = "timeout"  # ran longer than the job's timeout_s; the worker killed it
    LOST = "lost"  # its worker vanished (or never took the order)
    CANCELED = "canceled"  # the operator canceled the job, or the job failed
    CANNOT_START = "cannot-start"  # the process could not be started at all


REASONS = tuple(reason.value for reason in Reason)
# What a worker may report in task.finished; `lost` is the master's own finding.
WORKER_REASONS = tuple(r.value for r in Reason if r is not Reason.LOST)


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def reported_reason(exit_code: int | None, error: str | None, reason: str | None) -> Reason | None:
    """The reason of a `task.finished` report: the worker's own, else read from its exit code
    and error (workers before the `reason` field). None: the attempt succeeded."""
    if reason is not None:
        return Reason(reason)
    if exit_code == 0 and not error:
        return None
    if error and error.startswith("timeout"):
        return Reason.TIMEOUT
    if error and error.startswith("cannot start"):
        return Reason.CANNOT_START
    if error == "canceled":
        return Reason.CANCELED
    if exit_code is not None and exit_code < 0:
        return Reason.SIGNAL
    return Reason.EXIT


def describe(
    reason: Reason, exit_code: int | None, error: str | None, timeout_s: float | None
) -> str:
    """The human line for a failed attempt the worker reported."""
    if reason is Reason.TIMEOUT:
        if timeout_s is not None:
            return f"timed out after {timeout_s:g} s (its timeout_s)"
        return error or "timed out"
    if reason is Reason.SIGNAL and exit_code is not None and exit_code < 0:
        return f"killed by signal {-exit_code} ({signal_name(-exit_code)})"
    if reason is Reason.CANNOT_START:
        return error if error and error.startswith("cannot start") else f"cannot start: {error}"
    if reason is Reason.CANCELED:
        return "canceled"
    if exit_code is not None:
        line = f"exit code {exit_code}"
        return f"{line} ({error})" if error else line
    # No exit code and no known cause: say what is known, never "exit code None".
    return error or "ended without an exit code"
