"""The master's services in one bag, handed to every method: the composition of farmhand.master."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from models.store import Store

from .audit import AuditLog
from .clock import Clock
from .config import MasterConfig
from .devices.hub import DeviceHub
from .durability import Durability
from .events import EventBus
from .exposure import ExposedKeyLog
from .jobs.farm import JobFarm
from .jobs.templates import Catalog
from .keys import KeyRing
from .peerguard import PeerGuard
from .ports import ServedConnection
from .procs import ProcBoard
from .registry import ClientRegistry
from .webhooks.dispatcher import WebhookDispatcher


@dataclass
class Services:
    config: MasterConfig
    clock: Clock
    store: Store
    events: EventBus
    registry: ClientRegistry
    keys: KeyRing
    farm: JobFarm
    devices: DeviceHub
    procs: ProcBoard
    # What is not yet stored, and the barrier operator writes wait on (durability.py).
    durability: Durability
    audit: AuditLog
    # Webhooks: their queues, delivery greenlets and delivery log (webhooks/dispatcher.py).
    webhooks: WebhookDispatcher
    # The `master` part of `status`: role (active/standby), lease holder, last takeover.
    role_view: Callable[[], dict[str, Any]]
    started: float = 0.0
    # Live connections (farmhand.master.server.MasterConnection), for `status` and shutdown.
    connections: set[ServedConnection] = field(default_factory=set)
    listen_address: tuple[str, int] = ("", 0)
    # The TLS port's address, None when the master has no TLS port.
    tls_address: tuple[str, int] | None = None
    exposed_keys: ExposedKeyLog = field(default_factory=ExposedKeyLog)
    # Refusal logs and failed-login budgets per peer host (farmhand.master.peerguard).
    guard: PeerGuard = field(default_factory=PeerGuard)
    # Job templates: the built-in ones and the studio's (--templates DIR).
    templates: Catalog = field(default_factory=Catalog.with_builtins)
    # More parts of `status`, by name, from the parts the master assembles around its services
    # (`mqtt`: the MQTT bridge's counters, with --mqtt only).
    status_parts: dict[str, Callable[[], dict[str, Any]]] = field(default_factory=dict)
