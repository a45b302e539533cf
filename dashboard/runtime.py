"""The dashboard's moving parts, assembled once per process: settings, the master client, the
event hub, sessions, metrics and the throughput sampler."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gevent

from farmhand.options import MasterAddress, MasterList

from .logins import LoginGuard
from .metrics import JOB_STATUSES, SAMPLE_EVERY_S, FarmMetrics
from .rpc import MasterClient, MasterUnavailable, RpcError
from .sessions import SessionStore
from .sse import EventHub
from .surface import Surface, surface_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Settings:
    """What the command line decides."""

    # One master, or standby masters tried in turn.
    master: MasterAddress | MasterList = field(
        default_factory=lambda: MasterAddress("127.0.0.1", 6000)
    )
    key: str | None = None
    ca: Path | None = None  # verifies a tls:// master's certificate
    host: str = "127.0.0.1"
    port: int = 8080
    allowed_hosts: frozenset[str] = field(default_factory=frozenset)
    secure_cookies: bool = False  # set when served over HTTPS (behind a proxy)

    @property
    def host_names(self) -> frozenset[str]:
        """Names accepted in the Host header, besides localhost and IP literals."""
        names = {name.lower() for name in self.allowed_hosts}
        if self.host not in ("", "0.0.0.0", "::"):
            names.add(self.host.lower())
        return frozenset(names)


class Dashboard:
    """One dashboard process's state: what routes need besides the request."""

    def __init__(self, settings: Settings, master: MasterClient | None = None):
        self.settings = settings
        self.sessions = SessionStore()
        self.logins = LoginGuard()
        self.metrics = FarmMetrics()
        self.master = master or MasterClient(settings.master, settings.key, ca=settings.ca)
        self.hub = EventHub(
            self.master.subscribe, self.master.unsubscribe, observers=[self.metrics.observe]
        )
        self.master.on_event = self.hub.publish
        self.master.on_state = self._master_state
        self._sampler: gevent.Greenlet | None = None
        self._surface: Surface | None = None

    def start(self) -> None:
        self.hub.start()
        self.master.start()
        self._sampler = gevent.spawn(self._sample_loop)

    def stop(self) -> None:
        if self._sampler is not None:
            self._sampler.kill(block=False)
        self.master.stop()

    def call(
        self, method: str, params: dict[str, Any] | None = None, user: str | None = None
    ) -> Any:
        """A master call; `user` is the logged-in user a write is made for (the audit's who)."""
        return self.master.call(method, params or {}, on_behalf_of=user)

    def surface(self) -> Surface:
        """The methods /api/ serves, from the master's rpc.discover (asked once, when first
        needed; MasterUnavailable until the master answers)."""
        if self._surface is None:
            self._surface = surface_of(self.call("rpc.discover"))
        return self._surface

    def _master_state(self, up: bool) -> None:
        self.hub.master_state(up)
        if up:
            gevent.spawn(self.sample_once)

    # -- derived figures -------------------------------------------------------------------------
    def jobs_by_status(self) -> dict[str, int]:
        """Each job status and how many jobs have it (six cheap jobs.list calls)."""
        calls = {
            status: gevent.spawn(self.call, "jobs.list", {"status": status, "limit": 1})
            for status in JOB_STATUSES
        }
        gevent.joinall(list(calls.values()))
        return {status: call.get()["total"] for status, call in calls.items()}

    def sample_once(self) -> dict[str, Any] | None:
        try:
            status: dict[str, Any] = self.call("status")
        except (MasterUnavailable, RpcError) as exc:
            log.debug("throughput sample skipped: %s", exc)
            return None
        self.metrics.sample(status["farm"]["tasks_completed_total"])
        self.hub.publish("throughput", {"points": self.metrics.throughput(since_s=300)})
        return status

    def _sample_loop(self) -> None:
        while True:
            gevent.sleep(SAMPLE_EVERY_S)
            self.sample_once()
