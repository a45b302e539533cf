"""The node's set of supervised processes: start, stop, restart by name, `run_once(now)` for the
loop, `reload(config)` to follow an edited agents.toml, and a bounded `shutdown`.

One lock serialises every change: spawning yields to other greenlets (gevent's Popen waits for
the exec cooperatively), and an operator's order must not interleave with the loop's step.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gevent
from gevent.event import Event
from gevent.lock import RLock

from .config import AgentSpec, NodeConfig
from .process import SupervisedProcess
from .states import Lifecycle, State

log = logging.getLogger(__name__)

TICK_S = 0.1
# Beyond the longest stop timeout, time for the last SIGKILLed children to be reaped.
SHUTDOWN_MARGIN_S = 3.0


class UnknownAgent(LookupError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no agent named {name!r} on this node")
        self.name = name


@dataclass(frozen=True, slots=True)
class ReloadResult:
    added: list[str]
    removed: list[str]
    changed: list[str]
    unchanged: list[str]

    def as_dict(self) -> dict[str, list[str]]:
        return {
            "added": self.added,
            "removed": self.removed,
            "changed": self.changed,
            "unchanged": self.unchanged,
        }


class Supervisor:
    def __init__(
        self,
        config: NodeConfig,
        log_dir: Path,
        on_change: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.log_dir = log_dir
        self.on_change = on_change
        self.clock = clock
        self.procs: dict[str, SupervisedProcess] = {}
        # Removed from agents.toml and still stopping; dropped once stopped.
        self.retiring: dict[str, SupervisedProcess] = {}
        self.lock = RLock()
        for spec in config.agents:
            self.procs[spec.name] = self._new(spec)

    def _new(self, spec: AgentSpec) -> SupervisedProcess:
        return SupervisedProcess(spec, self.log_dir, self._changed)

    def _changed(self, lifecycle: Lifecycle, old: State, new: State) -> None:
        self._changed_now()

    def _get(self, name: str) -> SupervisedProcess:
        proc = self.procs.get(name)
        if proc is None:
            raise UnknownAgent(name)
        return proc

    # -- orders -------------------------------------------------------------------------------
    def start_all(self, now: float) -> None:
        with self.lock:
            for proc in self.procs.values():
                proc.start(now)

    def start(self, name: str, now: float) -> None:
        with self.lock:
            self._get(name).start(now)

    def stop(self, name: str, now: float) -> None:
        with self.lock:
            self._get(name).stop(now)

    def restart(self, name: str, now: float) -> None:
        with self.lock:
            self._get(name).restart(now)

    def reload(self, config: NodeConfig, now: float) -> ReloadResult:
        """Start new agents, stop removed ones, restart changed ones; leave the rest alone."""
        with self.lock:
            wanted = {spec.name: spec for spec in config.agents}
            added: list[str] = []
            changed: list[str] = []
            unchanged: list[str] = []
            removed = [name for name in self.procs if name not in wanted]
            for name in removed:
                retired = self.procs.pop(name)
                self.retiring[name] = retired
                log.info("agent %s: removed from the configuration; stopping", name)
                retired.stop(now)
            for name, spec in wanted.items():
                proc = self.procs.get(name)
                if proc is None and name in self.retiring:
                    # Removed and added back before it finished stopping: reuse it.
                    proc = self.procs[name] = self.retiring.pop(name)
                    proc.replace_spec(spec)
                    proc.start(now)
                    added.append(name)
                elif proc is None:
                    proc = self.procs[name] = self._new(spec)
                    log.info("agent %s: added to the configuration; starting", name)
                    proc.start(now)
                    added.append(name)
                elif proc.spec != spec:
                    log.info("agent %s: its configuration changed; restarting", name)
                    proc.replace_spec(spec)
                    proc.restart(now)
                    changed.append(name)
                else:
                    unchanged.append(name)
            self.config = config
            if removed or added:
                self._changed_now()
            return ReloadResult(added, removed, changed, unchanged)

    def stop_all(self, now: float) -> None:
        with self.lock:
            for proc in [*self.procs.values(), *self.retiring.values()]:
                proc.stop(now)

    # -- the loop -----------------------------------------------------------------------------
    def run_once(self, now: float) -> None:
        with self.lock:
            for proc in list(self.procs.values()):
                proc.run_once(now)
            for name, proc in list(self.retiring.items()):
                proc.run_once(now)
                if proc.lifecycle.state is not State.STOPPING:
                    del self.retiring[name]
                    proc.close()
                    log.info("agent %s: stopped and forgotten", name)
                    self._changed_now()

    def serve(self, stopping: Event, tick_s: float = TICK_S) -> None:
        """Run the loop until `stopping` is set."""
        while not stopping.is_set():
            try:
                self.run_once(self.clock())
            except Exception:
                # One bad step must not end supervision of every other agent.
                log.exception("supervision step failed")
            stopping.wait(tick_s)

    def all_stopped(self) -> bool:
        return not self.retiring and all(
            proc.lifecycle.pid is None and proc.lifecycle.state is not State.STOPPING
            for proc in self.procs.values()
        )

    def shutdown(self) -> bool:
        """Stop every agent (SIGTERM, then SIGKILL after its stop timeout); True if all ended."""
        log.info("stopping %d agent(s)", len(self.procs) + len(self.retiring))
        self.stop_all(self.clock())
        longest = max(
            (p.spec.policy.stop_timeout_s for p in [*self.procs.values(), *self.retiring.values()]),
            default=0.0,
        )
        deadline = self.clock() + longest + SHUTDOWN_MARGIN_S
        while not self.all_stopped() and self.clock() < deadline:
            self.run_once(self.clock())
            gevent.sleep(TICK_S / 2)
        for proc in self.procs.values():
            proc.close()
        done = self.all_stopped()
        if not done:
            log.error("some agents did not stop in time: %s", ", ".join(self.names_alive()))
        return done

    def names_alive(self) -> list[str]:
        return [
            name
            for name, proc in [*self.procs.items(), *self.retiring.items()]
            if proc.lifecycle.pid is not None
        ]

    def _changed_now(self) -> None:
        if self.on_change is not None:
            self.on_change()

    # -- views --------------------------------------------------------------------------------
    def get(self, name: str) -> SupervisedProcess:
        return self._get(name)

    def views(self, now: float) -> list[dict[str, Any]]:
        procs = [*self.procs.values(), *self.retiring.values()]
        return [proc.view(now) for proc in sorted(procs, key=lambda p: p.name)]
