"""One task attempt as a child process: start it (never through a shell), stream its output and
progress into the report queue, enforce its timeout, stop it on cancel, and report its result.

The child gets its own session, so its process group holds everything it spawns: timeouts and
cancels signal the whole group (SIGTERM, then SIGKILL after the grace period), and anything
left in the group when the main process exits is cleaned up the same way. The group is known
to `TaskGroups` from its spawn until it is empty, so it never outlives the worker.

Spawning: the stdlib's C spawn path (`subprocess.Popen` → `_posixsubprocess`, vfork and exec on
Linux, setsid and chdir in C), not gevent's Popen, which forks the whole Python process and runs
Python code in the child (about ten times slower per task). It blocks the hub only until the
exec, tens of microseconds. The exit is taken from the event loop's child watcher, started
before the hub can run (so the loop's SIGCHLD reaping cannot miss it); output is read from the
raw pipe with one I/O watcher, no file object per task.
"""

from __future__ import annotations

import codecs
import logging
import os
import signal
import subprocess  # the stdlib's, for its C spawn path (see the module docstring)
import time
from collections.abc import Callable
from typing import Any

import gevent
from gevent.event import Event

from farmhand.worker.reports import ReportQueue
from farmhand.worker.taskgroups import TaskGroups
from farmhand.worker.taskguard import live_members
from farmhand.worker.taskorder import TaskOrder
from farmhand.worker.taskpolicy import TaskPolicy, TaskRefused
from protocol.progress import ProgressParser

log = logging.getLogger(__name__)

READ_CHUNK_BYTES = 64 * 1024
GROUP_POLL_S = 0.05
# After the group is gone, output still held by escaped processes (own session) is not awaited.
READER_GRACE_S = 2.0
PROGRESS_STEP = 0.5


class TaskProcess:
    """One attempt. `start()` then it runs by itself; `running` until its result is queued."""

    def __init__(
        self,
        order: TaskOrder,
        *,
        reports: ReportQueue,
        policy: TaskPolicy,
        groups: TaskGroups | None = None,
        kill_grace_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.order = order
        self.attempt = order.attempt
        self.reports = reports
        self.policy = policy
        self.groups = groups
        self.kill_grace_s = kill_grace_s
        self.clock = clock
        self.pid: int | None = None
        self.cwd: str | None = None  # the real folder it runs in, once started
        self.exit_code: int | None = None
        self.error: str | None = None
        # Why it ended other than by success (farmhand/master/jobs/outcomes.py), None if it did.
        self.reason: str | None = None
        self._ended_by: str | None = None  # "timeout" or "canceled", once the worker kills it
        self.done = Event()  # set once the result is queued
        self._spawned = Event()  # set once Popen has returned or failed
        self._proc: subprocess.Popen[bytes] | None = None
        self._exited = Event()  # set by the child watcher, with the wait status in _status
        self._exit_watcher: Any = None
        self._status = 0
        self._output_fd = -1
        self._started_at = 0.0
        self._killer: gevent.Greenlet | None = None
        self._progress = ProgressParser(order.progress_regex, order.frame_start, order.frame_end)
        self._last_percent: float | None = None

    @property
    def running(self) -> bool:
        return not self.done.is_set()

    def start(self) -> bool:
        """Start the process; if it cannot start, queue that result and return False."""
        order = self.order
        if self._progress.regex_error:
            log.warning(
                "attempt %s: %s; using the built-in patterns",
                self.attempt,
                self._progress.regex_error,
            )
        self._started_at = self.clock()
        try:
            cwd = self.policy.cwd_for(order.cwd)
            self.cwd = cwd
            pid = self._spawn(cwd)
        except (OSError, ValueError, TaskRefused) as exc:
            self._finish(None, f"cannot start: {_describe(exc, order.argv[0])}", "cannot-start")
            return False
        finally:
            self._spawned.set()
        log.info(
            "attempt %s (job %s task %s): started pid %d: %s in %s",
            self.attempt,
            order.job_id,
            order.task_id,
            pid,
            order.argv,
            cwd,
        )
        self.reports.started(self.attempt, pid)
        gevent.spawn(self._run)
        return True

    def _spawn(self, cwd: str) -> int:
        """Start the child with the output pipe, and watch its exit and group, with no switch
        to the hub in between (the loop reaps every child on SIGCHLD: an exit seen before its
        watcher starts would be lost, and the guard must know the group before anything can
        kill the worker's greenlets)."""
        env = self.policy.env_for(self.order)
        loop = gevent.get_hub().loop
        # The loop's SIGCHLD handler must be in place before the child can exit: one that dies
        # before its watcher starts is then reaped and reported in the loop's next turn. gevent
        # installs it only when its own Popen runs (a worker's task guard), not for a watcher.
        loop.install_sigchld()
        read_fd, write_fd = os.pipe()
        try:
            self._proc = subprocess.Popen(
                self.order.argv,
                cwd=cwd,
                env=env,
                stdin=_devnull(),
                stdout=write_fd,
                stderr=write_fd,
                start_new_session=True,  # its own process group, so kills reach its children
            )
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        self.pid = pid = self._proc.pid
        self._exit_watcher = loop.child(pid, False)
        self._exit_watcher.start(self._on_exit)
        os.set_blocking(read_fd, False)
        self._output_fd = read_fd
        if self.groups is not None:
            self.groups.add(pid, self.attempt)
        return pid

    def _on_exit(self) -> None:
        """The child watcher's callback, in the hub: the loop has reaped the child."""
        watcher, self._exit_watcher = self._exit_watcher, None
        if watcher is not None:
            self._status = watcher.rstatus
            watcher.stop()
            watcher.close()
        self._exited.set()

    def cancel(self) -> None:
        if self.done.is_set():
            return
        log.info("attempt %s: cancel requested", self.attempt)
        self._terminate("canceled", "canceled")

    def _run(self) -> None:
        assert self._proc is not None
        reader = gevent.spawn(self._read_output)
        watchdog = None
        if self.order.timeout_s is not None:
            watchdog = gevent.spawn_later(self.order.timeout_s, self._on_timeout)
        self._exited.wait()
        exit_code = os.waitstatus_to_exitcode(self._status)
        self._proc.returncode = exit_code  # reaped by the loop: the Popen must not wait
        duration_s = self.clock() - self._started_at
        if watchdog is not None:
            watchdog.kill()
        log.info(
            "attempt %s: pid %d exited with %s after %.2fs",
            self.attempt,
            self.pid,
            exit_code,
            duration_s,
        )
        if self._killer is None and self._group_alive():
            log.info("attempt %s: cleaning up processes left in its group", self.attempt)
            self._killer = gevent.spawn(self._kill_group)
        if self._killer is not None:
            self._killer.join()
        if self.groups is not None and self.pid is not None:
            self.groups.remove(self.pid)
        reader.join(timeout=READER_GRACE_S)
        if not reader.dead:
            log.warning(
                "attempt %s: output still held open by an escaped process; closing", self.attempt
            )
            reader.kill()
        self._finish(exit_code, self.error, _reason_of(exit_code, self._ended_by), duration_s)

    def _on_timeout(self) -> None:
        log.warning("attempt %s: timeout after %gs", self.attempt, self.order.timeout_s)
        self._terminate(f"timeout after {self.order.timeout_s:g}s", "timeout")

    def _terminate(self, error: str, ended_by: str) -> None:
        if self.error is None:
            self.error = error
            self._ended_by = ended_by
        if self._killer is None:
            self._killer = gevent.spawn(self._kill_group)

    def _kill_group(self) -> None:
        """SIGTERM the group, and SIGKILL whatever is left after the grace period."""
        self._spawned.wait()  # a cancel can arrive while Popen is still forking
        if self.pid is None or not self._signal_group(signal.SIGTERM):
            return
        log.info("attempt %s: sent SIGTERM to process group %d", self.attempt, self.pid)
        deadline = self.clock() + self.kill_grace_s
        while self._group_alive():
            if self.clock() >= deadline:
                self._signal_group(signal.SIGKILL)
                log.warning("attempt %s: sent SIGKILL to process group %d", self.attempt, self.pid)
                return
            gevent.sleep(GROUP_POLL_S)

    def _signal_group(self, signum: int) -> bool:
        assert self.pid is not None
        try:
            os.killpg(self.pid, signum)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    def _group_alive(self) -> bool:
        """True while a live (not zombie) process remains in the task's process group.

        killpg(pgid, 0) also succeeds for zombies, and an orphaned zombie waits for whoever
        reaps orphans (PID 1, maybe late or never in a container): without this check every
        timeout or cancel whose grandchild died would wait out the whole kill grace.
        """
        if not self._signal_group(0):
            return False
        assert self.pid is not None
        return live_members(self.pid)

    def _read_output(self) -> None:
        fd = self._output_fd
        hub = gevent.get_hub()
        readable = hub.loop.io(fd, 1)  # one watcher for the whole task, reused per wait
        # An incremental decoder never splits a multi-byte character between two messages.
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        try:
            while True:
                try:
                    data = os.read(fd, READ_CHUNK_BYTES)
                except BlockingIOError:
                    hub.wait(readable)
                    continue
                if not data:
                    break
                self._emit(decoder.decode(data))
            self._emit(decoder.decode(b"", final=True))
            self._note_progress(self._progress.feed("\n"))  # the last line may lack its \n
        except OSError as exc:
            log.warning("attempt %s: reading output failed: %s", self.attempt, exc)
        finally:
            readable.close()
            os.close(fd)

    def _emit(self, text: str) -> None:
        if text:
            self.reports.output(self.attempt, text)
            self._note_progress(self._progress.feed(text))

    def _note_progress(self, percent: float | None) -> None:
        last = self._last_percent
        if percent is None or percent == last:
            return
        if last is None or abs(percent - last) >= PROGRESS_STEP or percent >= 100.0:
            self._last_percent = percent
            self.reports.progress(self.attempt, percent)

    def _finish(
        self,
        exit_code: int | None,
        error: str | None,
        reason: str | None,
        duration_s: float = 0.0,
    ) -> None:
        self.exit_code, self.error, self.reason = exit_code, error, reason
        log.info(
            "attempt %s: finished: exit code %s, reason %s, error %s",
            self.attempt,
            exit_code,
            reason,
            error,
        )
        self.reports.finished(self.attempt, exit_code, error, duration_s, reason)
        self.done.set()


def _reason_of(exit_code: int, ended_by: str | None) -> str | None:
    """Why a process that ran ended: the worker's own kill (timeout, cancel) comes first, then
    a signal (a negative exit code) or a non-zero exit; None for a clean exit 0."""
    if ended_by is not None:
        return ended_by
    if exit_code < 0:
        return "signal"
    return "exit" if exit_code else None


_devnull_fd = -1


def _devnull() -> int:
    """One /dev/null descriptor for every task's stdin (close-on-exec here, dup2'ed there)."""
    global _devnull_fd
    if _devnull_fd < 0:
        _devnull_fd = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    return _devnull_fd


def _describe(exc: BaseException, program: str) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename or program}"
    return str(exc) or type(exc).__name__
