"""The process groups of this worker's running tasks, kept where they outlive the worker: told to
the task guard (taskguard.py), which kills them when the worker dies, and written to a state
file in the work dir, from which the worker's next start kills what its previous incarnation
left behind (when the worker and its guard were killed together).

The state file `.farmhand-NAME.tasks` is a journal of the lines the guard is sent (`+ PGID START
ATTEMPT`, `- PGID`), each appended with one write (a kill cannot tear it; no fsync: a machine
crash leaves no process to kill), and rewritten with only the live groups when it grows. A
lock on `.farmhand-NAME.lock`, held while the worker runs, keeps two workers of one name off
one journal.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import sys
import time
from pathlib import Path
from typing import IO

import gevent
from gevent import subprocess

from farmhand.worker.taskguard import (
    GroupRecord,
    format_add,
    format_remove,
    kill_groups,
    parse_line,
    start_time,
)
from farmhand.worker.taskpolicy import inherited_env

log = logging.getLogger(__name__)

GUARD_SCRIPT = Path(__file__).with_name("taskguard.py")
# A task left by a dead worker is being run again elsewhere: it gets this long to exit on
# SIGTERM before SIGKILL (or the kill grace, when that is shorter).
ORPHAN_KILL_GRACE_S = 1.0
# A task guard that dies is replaced at once, or after this long if it lived less than this.
GUARD_RESTART_S = 1.0
# The journal is rewritten with only the live groups once it is this long.
JOURNAL_COMPACT_BYTES = 256 * 1024


class WorkDirBusy(Exception):
    """Another live worker of the same name uses this work dir."""


class TaskGroups:
    def __init__(self, work_dir: Path, worker_name: str, kill_grace_s: float = 5.0) -> None:
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", worker_name) or "worker"
        self.state_path = work_dir / f".farmhand-{safe}.tasks"
        self.lock_path = work_dir / f".farmhand-{safe}.lock"
        self.grace_s = min(kill_grace_s, ORPHAN_KILL_GRACE_S)
        self._held: dict[int, tuple[GroupRecord, str]] = {}
        self._lock: IO[bytes] | None = None
        self._journal: int | None = None  # an O_APPEND file descriptor
        self._journal_bytes = 0
        self._guard: subprocess.Popen[bytes] | None = None
        self._watcher: gevent.Greenlet | None = None
        self._closing = False

    # -- the worker's life ----------------------------------------------------------------------
    def start(self) -> list[int]:
        """Take the lock, kill what a previous incarnation left, start the guard. Blocks (up to
        the grace) before the worker connects; returns the groups it killed."""
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        lock = self.lock_path.open("ab")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise WorkDirBusy(
                f"another worker uses {self.state_path.parent} under this name "
                f"({self.lock_path} is locked): give each worker its own --name or --work-dir"
            ) from None
        self._lock = lock
        left = read_journal(self.state_path)
        killed: list[int] = []
        if left:
            log.info(
                "%s lists %d task group(s) of a previous worker: stopping what is left of them",
                self.state_path,
                len(left),
            )
            killed = kill_groups(left, self.grace_s)
        self._compact()
        self._start_guard()
        return killed

    def close(self) -> None:
        """A clean stop: the guard exits (killing anything still held), the state file goes."""
        self._closing = True
        if self._watcher is not None:
            self._watcher.kill()
        if self._guard is not None:
            guard, self._guard = self._guard, None
            with contextlib.suppress(OSError):
                assert guard.stdin is not None
                guard.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                guard.wait(timeout=self.grace_s + 2.0)
        if self._journal is not None:
            os.close(self._journal)
            self._journal = None
        if not self._held:
            with contextlib.suppress(OSError):
                self.state_path.unlink()
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    # -- tasks ----------------------------------------------------------------------------------
    def add(self, pgid: int, attempt: str) -> None:
        """A task started with its own group `pgid`. Called as soon as the spawn returns, with no
        greenlet switch in between: the group is unknown only while the spawn runs (gevent's
        Popen waits for the exec cooperatively, about a millisecond)."""
        record = GroupRecord(pgid, start_time(pgid))
        self._held[pgid] = (record, attempt)
        line = format_add(record, attempt)
        self._tell(line)
        self._append(line)

    def remove(self, pgid: int) -> None:
        """The task's group is empty: nothing of it is left to kill."""
        if self._held.pop(pgid, None) is not None:
            line = format_remove(pgid)
            self._tell(line)
            self._append(line)

    @property
    def guard_pid(self) -> int | None:
        return None if self._guard is None else self._guard.pid

    # -- the guard ------------------------------------------------------------------------------
    def _start_guard(self) -> None:
        guard = subprocess.Popen(
            [sys.executable, "-I", "-S", str(GUARD_SCRIPT), f"{self.grace_s:g}"],
            stdin=subprocess.PIPE,
            env=inherited_env(os.environ),
            # Its own session: a signal to the worker's group must not kill it first.
            start_new_session=True,
        )
        assert guard.stdin is not None
        os.set_blocking(guard.stdin.fileno(), False)  # a stuck guard must not block the hub
        self._guard = guard
        log.info("task guard started: pid %d", guard.pid)
        for record, attempt in self._held.values():
            self._tell(format_add(record, attempt))
        self._watcher = gevent.spawn(self._watch, guard)

    def _watch(self, guard: subprocess.Popen[bytes]) -> None:
        started = time.monotonic()
        code = guard.wait()
        if not self._closing and self._guard is guard:
            # gevent's Popen is untyped, so `is` narrows guard to the Optional of self._guard.
            assert guard is not None
            log.warning("task guard pid %d exited with %s: starting a new one", guard.pid, code)
            if time.monotonic() - started < GUARD_RESTART_S:
                gevent.sleep(GUARD_RESTART_S)  # one that dies at once must not spin
            self._replace_guard(guard)

    def _replace_guard(self, old: subprocess.Popen[bytes]) -> None:
        if self._closing or self._guard is not old:
            return  # already replaced
        assert old is not None  # narrowed to self._guard's Optional (gevent's Popen is untyped)
        self._guard = None
        # SIGKILL before closing its pipe: a guard that read EOF would kill every task.
        with contextlib.suppress(OSError):
            old.kill()
        with contextlib.suppress(OSError):
            assert old.stdin is not None
            old.stdin.close()
        while not self._closing and self._guard is None:
            try:
                self._start_guard()
            except OSError as exc:
                # Unguarded until one starts; the journal still covers the worker's next start.
                log.error("cannot start a task guard: %s; retrying in %gs", exc, GUARD_RESTART_S)
                gevent.sleep(GUARD_RESTART_S)

    def _tell(self, line: bytes) -> None:
        guard = self._guard
        if guard is None or guard.stdin is None:
            return
        try:
            os.write(guard.stdin.fileno(), line)
        except (OSError, ValueError) as exc:  # BlockingIOError, BrokenPipeError, a closed pipe
            # Gone or stuck (64 KiB of lines unread): a new guard gets the whole set.
            log.warning("task guard pid %d cannot be told (%s): replacing it", guard.pid, exc)
            gevent.spawn(self._replace_guard, guard)

    # -- the state file ---------------------------------------------------------------------
    def _append(self, line: bytes) -> None:
        if self._journal is None:
            return
        try:
            self._journal_bytes += os.write(self._journal, line)
        except OSError as exc:
            log.warning("cannot write %s: %s", self.state_path, exc)
        if self._journal_bytes >= JOURNAL_COMPACT_BYTES:
            self._compact()

    def _compact(self) -> None:
        """Replace the journal with one `+` line per live group (atomically: a rename)."""
        lines = b"".join(format_add(record, attempt) for record, attempt in self._held.values())
        temporary = self.state_path.with_name(self.state_path.name + ".new")
        try:
            temporary.write_bytes(lines)
            os.replace(temporary, self.state_path)
            journal = os.open(self.state_path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        except OSError as exc:
            log.warning("cannot write %s: %s", self.state_path, exc)
            return
        if self._journal is not None:
            os.close(self._journal)
        self._journal, self._journal_bytes = journal, len(lines)


def read_journal(path: Path) -> list[GroupRecord]:
    """The groups a journal leaves live (none when there is no journal)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as exc:
        log.warning("cannot read %s: %s", path, exc)
        return []
    held: dict[int, GroupRecord] = {}
    for line in data.splitlines():
        parse_line(line, held)
    return list(held.values())
