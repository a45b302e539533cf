"""The master assembled: storage, registry, keys, server, saver and reaper, started and stopped
in the right order. Shutdown: stop accepting, close connections, save every client, close the DB.
"""

from __future__ import annotations

import logging
import time

import gevent
from gevent.event import Event

from models.auditstore import AuditStore
from models.devicestore import DeviceStore
from models.jobstore import JobStore
from models.store import Store

from .api import Api
from .audit import AuditLog
from .clock import Clock
from .config import MasterConfig
from .devices.hub import DeviceHub
from .events import EventBus
from .jobs.farm import JobFarm
from .keys import KeyRing
from .procs import ProcBoard
from .reaper import HeartbeatReaper
from .registry import ClientRegistry
from .saver import ClientSaver
from .server import MasterServer
from .services import Services

log = logging.getLogger(__name__)

ADMIN_KEY_FILE = "admin.key"


class Master:
    def __init__(self, config: MasterConfig, clock: Clock | None = None) -> None:
        self.config = config
        clock = clock or Clock()
        store = Store(config.db, config.data_dir)
        events = EventBus()
        registry = ClientRegistry(events)
        farm = JobFarm(
            JobStore(store),
            events,
            config.data_dir,
            wall=clock.wall,
            mono=clock.mono,
            heartbeat_timeout_s=config.heartbeat_timeout_s,
            log_retention_days=config.log_retention_days,
        )
        farm.registry = registry
        devices = DeviceHub(DeviceStore(store), registry, events, wall=clock.wall, mono=clock.mono)
        registry.watchers.extend([farm, devices])
        # Node reports live in memory only; nodes resend them on every (re)connect.
        procs = ProcBoard(events, wall=clock.wall, mono=clock.mono)
        registry.watchers.append(procs)
        self.services = Services(
            config=config,
            clock=clock,
            store=store,
            events=events,
            registry=registry,
            keys=KeyRing(store),
            farm=farm,
            devices=devices,
            procs=procs,
            audit=AuditLog(AuditStore(store), config.audit_retention_days, clock.wall),
        )
        self.api = Api(self.services)
        self.server = MasterServer(self.services, self.api)
        self.saver = ClientSaver(self.services.registry, store, config.save_interval_s)
        self.reaper = HeartbeatReaper(
            self.services.registry,
            timeout_s=config.heartbeat_timeout_s,
            interval_s=config.heartbeat_s / 2,
            mono=clock.mono,
            wall=clock.wall,
        )
        self._stop_requested = Event()

    @property
    def address(self) -> tuple[str, int]:
        return self.services.listen_address

    def start(self) -> None:
        services = self.services
        self.config.data_dir.mkdir(parents=True, exist_ok=True)
        version = services.store.open()
        log.info("database %s (schema version %d)", services.store.description, version)
        began = time.perf_counter()
        records = services.store.load_clients()
        services.registry.load(records)
        log.info("loaded %d clients in %.3fs", len(records), time.perf_counter() - began)
        services.keys.load()
        services.farm.load()
        services.devices.load()
        if self.config.require_key:
            self._ensure_admin_key()
        services.started = services.clock.wall()
        try:
            self.server.start()
        except OSError:
            services.store.close()
            raise
        services.listen_address = self.server.address[:2]
        self.saver.start()
        self.reaper.start()
        services.farm.start()
        services.devices.start()
        services.audit.start()
        log.info("listening on %s:%d", *services.listen_address)

    def _ensure_admin_key(self) -> None:
        """With --require-key nobody could create the first key: write one to admin.key."""
        keys = self.services.keys
        if any(record.role == "api" and not record.revoked for record in keys.records()):
            return
        _, secret = keys.create("api", "bootstrap admin", self.services.clock.wall())
        path = self.config.data_dir / ADMIN_KEY_FILE
        path.touch(mode=0o600)
        path.write_text(secret + "\n")
        log.warning("no api key existed: created one in %s (readable by this user only)", path)

    def request_stop(self) -> None:
        self._stop_requested.set()

    def serve_until_stopped(self) -> None:
        self._stop_requested.wait()

    def stop(self) -> None:
        services = self.services
        timeout_s = self.config.shutdown_timeout_s
        log.info("stopping: closing the port and %d connections", len(services.connections))
        self.server.close()
        self.reaper.stop()
        services.farm.stopping = True
        services.farm.dispatcher.stop()
        for connection in list(services.connections):
            connection.close("master shutting down")
        with gevent.Timeout(timeout_s, False):
            while services.connections:
                gevent.sleep(0.01)
        self.saver.stop()
        services.farm.stop()
        services.devices.stop()
        services.audit.stop()
        began = time.perf_counter()
        saved = self.saver.save_all()
        log.info("saved %d clients in %.3fs", saved, time.perf_counter() - began)
        services.store.close()
        log.info("stopped")
