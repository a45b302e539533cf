"""One supervised child: spawns it in its own process group, pumps its stdout and stderr into a
rotated log file, signals the group, and feeds what happens into its `Lifecycle`.

Exits are noticed in `run_once(now)` (by polling the Popen), so every transition happens in the
supervisor's loop or an operator's call, never behind its back.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from pathlib import Path
from typing import IO, Any

import gevent
from gevent import subprocess

from .config import AgentSpec
from .rotating import RotatingWriter
from .states import Action, Lifecycle, Listener

log = logging.getLogger(__name__)

READ_CHUNK_BYTES = 64 * 1024
# A line longer than this is written in pieces rather than held in memory.
MAX_PARTIAL_LINE_BYTES = 64 * 1024


class SupervisedProcess:
    def __init__(self, spec: AgentSpec, log_dir: Path, listener: Listener | None = None) -> None:
        self.spec = spec
        self.lifecycle = Lifecycle(spec.name, spec.policy, listener)
        self.writer = RotatingWriter(
            log_dir / f"{spec.name}.log", spec.log_max_bytes, spec.log_backups
        )
        self._popen: subprocess.Popen[bytes] | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    def replace_spec(self, spec: AgentSpec) -> None:
        """Takes effect at the next spawn (the caller restarts it)."""
        self.spec = spec
        self.lifecycle.policy = spec.policy
        self.writer.configure(spec.log_max_bytes, spec.log_backups)

    # -- operator -----------------------------------------------------------------------------
    def start(self, now: float) -> None:
        self._act(self.lifecycle.start(now), now)

    def stop(self, now: float) -> None:
        self._act(self.lifecycle.stop(now), now)

    def restart(self, now: float) -> None:
        self._act(self.lifecycle.restart(now), now)

    # -- the loop -----------------------------------------------------------------------------
    def run_once(self, now: float) -> None:
        if self._popen is not None:
            code = self._popen.poll()
            if code is not None:
                self._reaped(code, now)
        self._act(self.lifecycle.tick(now), now)

    def _act(self, action: Action, now: float) -> None:
        if action is Action.SPAWN:
            self._spawn(now)
        elif action is Action.TERMINATE:
            self._signal(signal.SIGTERM)
        elif action is Action.KILL:
            self._signal(signal.SIGKILL)

    def _spawn(self, now: float) -> None:
        spec = self.spec
        try:
            popen = subprocess.Popen(
                list(spec.argv),
                cwd=spec.cwd,
                env={**os.environ, **dict(spec.env)},
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                # Its own session and process group: signals reach its children too, and a
                # Ctrl-C on the node's terminal does not hit the agents behind the node's back.
                start_new_session=True,
            )
        except (OSError, ValueError) as exc:
            error = f"cannot start {spec.argv[0]}: {_describe_error(exc)}"
            log.warning("agent %s: %s", spec.name, error)
            self._mark(f"{error}\n")
            # A failed spawn is a failed start: it never returns SPAWN, so no recursion.
            self._act(self.lifecycle.spawn_failed(now, error), now)
            return
        self._popen = popen
        self.lifecycle.spawned(now, popen.pid)
        log.info("agent %s: started pid %d: %s", spec.name, popen.pid, " ".join(spec.argv))
        self._mark(f"started pid {popen.pid}\n")
        for stream in (popen.stdout, popen.stderr):
            gevent.spawn(self._pump, stream)

    def _reaped(self, code: int, now: float) -> None:
        popen, self._popen = self._popen, None
        assert popen is not None
        pid = popen.pid
        # Whatever the leader left behind in its group would be an orphan: clean it up now,
        # before any new spawn could be handed the same id.
        if _signal_group(pid, signal.SIGKILL):
            log.info("agent %s: killed processes left in group %d", self.name, pid)
        log.info("agent %s: pid %d exited with %s", self.name, pid, _describe_exit(code))
        self._mark(f"pid {pid} exited with {_describe_exit(code)}\n")
        self._act(self.lifecycle.exited(now, code), now)

    def _signal(self, signum: int) -> None:
        pid = self.lifecycle.pid
        if pid is not None and _signal_group(pid, signum):
            log.info(
                "agent %s: sent %s to process group %d",
                self.name,
                signal.Signals(signum).name,
                pid,
            )

    def _mark(self, text: str) -> None:
        """A line of the node's own in the agent's log, so its history reads in one place."""
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        self.writer.write(f"--- farmhand node {stamp}: {text}".encode())

    def _pump(self, stream: IO[bytes] | None) -> None:
        """Copy one pipe into the log, line by line, so stdout and stderr never cut each other."""
        if stream is None:
            return
        partial = b""
        try:
            while data := stream.read1(READ_CHUNK_BYTES):  # type: ignore[attr-defined]
                partial += data
                cut = partial.rfind(b"\n") + 1
                if cut:
                    self.writer.write(partial[:cut])
                    partial = partial[cut:]
                if len(partial) > MAX_PARTIAL_LINE_BYTES:
                    self.writer.write(partial)
                    partial = b""
        except (OSError, ValueError) as exc:
            log.debug("agent %s: output pipe ended: %s", self.name, exc)
        finally:
            if partial:
                self.writer.write(partial + b"\n")
            with contextlib.suppress(OSError):
                stream.close()

    def view(self, now: float) -> dict[str, Any]:
        view = self.lifecycle.view(now)
        view["program"] = self.spec.program
        return view

    def close(self) -> None:
        self.writer.close()


def _signal_group(pgid: int, signum: int) -> bool:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _describe_error(exc: OSError | ValueError) -> str:
    # A ValueError (an embedded NUL in argv or env) has no strerror.
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _describe_exit(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-code).name}"
    return f"code {code}"
