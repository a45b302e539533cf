"""The task guard: a small process that kills a worker's tasks when the worker dies, however it
dies. Standard library only; the worker runs this file as `python -I -S taskguard.py GRACE`.

Theory of operation: the worker tells the guard each task's process group over a pipe on the
guard's stdin (`+ PGID START ATTEMPT` when a task starts, `- PGID` once its group is empty;
the worker's state file is a journal of the same lines). The
worker is the only holder of the pipe's write end, so when the worker exits — a clean stop,
a crash, or kill -9 — the kernel closes it and the guard reads EOF. It then SIGTERMs every group
it holds, SIGKILLs what is left after GRACE seconds, and exits. The guard has its own session,
so a signal to the worker's group (Ctrl-C, the node's kill of a dead agent's group) does not
take it out first; it ignores SIGINT, SIGTERM and SIGHUP and lives exactly as long as the pipe.

Why a guard and not PR_SET_PDEATHSIG: the death signal reaches only the direct child (a
renderer's own children in the group would be left running), it must be set in the child
between fork and exec, which the C spawn paths (posix_spawn, _posixsubprocess) cannot do, and
it fires when the forking *thread* exits rather than the process. The guard works with any spawn
path and kills whole groups. What it cannot cover, the worker's state file does (taskgroups.py).

Identity: a group is named by its leader's pid and the leader's start time (field 22 of
/proc/PID/stat). A group is signalled only if its leader is the same process, or is gone: a pid
that is some process's group id is never handed to a new process, so while group N has members
no other process is N, and once it has none, killpg(N) finds nobody.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

log = logging.getLogger("farmhand.worker.taskguard")

GROUP_POLL_S = 0.05
LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


@dataclass(frozen=True, slots=True)
class GroupRecord:
    """A task's process group: its id (the leader's pid) and the leader's start time."""

    pgid: int
    start: int | None  # clock ticks since boot; None when the leader was already gone


def start_time(pid: int) -> int | None:
    """The start time of process `pid` in clock ticks since boot, or None if there is none."""
    try:  # os.open, not open(): no file object (a worker reads this for every task it starts)
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY)
    except OSError:
        return None
    try:
        stat = os.read(fd, 4096)
    except OSError:
        return None
    finally:
        os.close(fd)
    # "pid (comm) state ppid …": comm may hold spaces and parentheses; starttime is field 22.
    fields = stat[stat.rfind(b")") + 2 :].split()
    return int(fields[19]) if len(fields) > 19 else None


def is_ours(record: GroupRecord) -> bool:
    """Whether the group may be signalled: its leader is the recorded process, or gone."""
    now = start_time(record.pgid)
    if now is None:
        return True  # the leader is gone: whatever is left in group pgid is the task's
    return record.start is not None and now == record.start


def live_members(pgid: int) -> bool:
    """Whether /proc shows a non-zombie process in group `pgid` (True where /proc is absent).

    killpg(pgid, 0) also succeeds for zombies, and an orphaned zombie waits for whoever reaps
    orphans (PID 1, maybe late or never in a container): counting them would make every kill
    wait out its whole grace.
    """
    try:
        entries = os.listdir("/proc")
    except OSError:
        return True
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] != b"Z":
            return True
    return False


def signal_group(pgid: int, signum: int) -> bool:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def kill_groups(
    records: Iterable[GroupRecord],
    grace_s: float,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[int]:
    """SIGTERM each group that is still ours, SIGKILL what is left after `grace_s`; the groups
    that were signalled. Blocking: for the guard and a worker's start, not the worker's hub."""
    # Zombies alone need no signal (and would make the log claim a kill that did not happen).
    termed = [
        r.pgid
        for r in records
        if is_ours(r) and live_members(r.pgid) and signal_group(r.pgid, signal.SIGTERM)
    ]
    deadline = clock() + grace_s
    left = [pgid for pgid in termed if live_members(pgid)]
    while left and clock() < deadline:
        sleep(GROUP_POLL_S)
        left = [pgid for pgid in left if live_members(pgid)]
    for pgid in left:
        signal_group(pgid, signal.SIGKILL)
    if termed:
        log.warning(
            "killed the process group(s) %s (SIGKILL for %s)",
            ", ".join(map(str, termed)),
            ", ".join(map(str, left)) or "none",
        )
    return termed


def format_add(record: GroupRecord, attempt: str) -> bytes:
    start = "-" if record.start is None else str(record.start)
    return f"+ {record.pgid} {start} {attempt}\n".encode()


def format_remove(pgid: int) -> bytes:
    return f"- {pgid}\n".encode()


def parse_line(line: bytes, held: dict[int, GroupRecord]) -> None:
    """Apply one line: `+ PGID START [ATTEMPT]` (START `-` when unknown) or `- PGID`."""
    parts = line.split()
    try:
        if len(parts) in (3, 4) and parts[0] == b"+":
            start = None if parts[2] == b"-" else int(parts[2])
            held[int(parts[1])] = GroupRecord(int(parts[1]), start)
        elif len(parts) == 2 and parts[0] == b"-":
            held.pop(int(parts[1]), None)
        else:
            raise ValueError(line)
    except ValueError:
        log.warning("ignoring a bad task group line: %r", line[:100])


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, stream=sys.stderr)
    grace_s = float(argv[1]) if len(argv) > 1 else 1.0
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)  # the pipe's EOF is the only way to end
    held: dict[int, GroupRecord] = {}
    stdin = sys.stdin.buffer
    for line in stdin:
        parse_line(line, held)
    if held:
        log.warning("the worker is gone: stopping its %d task group(s)", len(held))
        kill_groups(held.values(), grace_s)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
