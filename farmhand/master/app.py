"""The master assembled: storage, registry, keys, servers (plain and TLS), saver and reaper,
started and stopped in the right order. Shutdown: stop accepting, close connections, store
everything pending (waiting up to the shutdown timeout for a database that is down), close the DB.
On PostgreSQL the master first waits as a standby until it holds the master lease (standby.py);
when it loses the lease it steps down: ports closed at once, nothing written (`abandon`).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

import gevent
from gevent.event import Event

from models.auditstore import AuditStore
from models.devicestore import DeviceStore
from models.jobstore import JobStore
from models.lease import LeaseStore
from models.store import Store
from models.webhookstore import WebhookStore

from .api.surface import Api
from .audit import AuditLog
from .clock import Clock
from .config import MasterConfig
from .devices.hub import DeviceHub
from .durability import Durability
from .events import EventBus
from .jobs.farm import JobFarm
from .jobs.studio import parse_studio_template
from .jobs.templates import Catalog, Template
from .keys import KeyRing
from .mqtt import MqttBridge, parse_mqtt_url
from .procs import ProcBoard
from .reaper import HeartbeatReaper
from .registry import ClientRegistry
from .saver import ClientSaver
from .server import MasterServer
from .services import Services
from .standby import LeaseKeeper, always_active_view, holder_name
from .tls import TlsMasterServer, load_server_context
from .webhooks.dispatcher import WebhookDispatcher
from .webhooks.mail import Mailer

log = logging.getLogger(__name__)

ADMIN_KEY_FILE = "admin.key"
# master.py exits with this when it stopped with changes the database did not take.
EXIT_UNSAVED = 3


class ListenError(Exception):
    """A port could not be bound: the message names the address and the reason."""

    def __init__(self, host: str, port: int, exc: OSError) -> None:
        super().__init__(f"cannot listen on {host}:{port}: {exc.strerror or exc}")


def read_studio_templates(folder: Path | None) -> list[Template]:
    """The studio's job templates: every *.toml file in the folder (ValueError, one line)."""
    if folder is None:
        return []
    if not folder.is_dir():
        raise ValueError(f"templates folder {folder} is not a folder")
    templates = []
    for path in sorted(folder.glob("*.toml")):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"template {path}: {exc}") from None
        templates.append(parse_studio_template(str(path), text))
    return templates


class Master:
    def __init__(self, config: MasterConfig, clock: Clock | None = None) -> None:
        """ValueError (one line) when the TLS certificate or key cannot be used."""
        self.config = config
        tls_context = load_server_context(config)
        templates = Catalog.with_builtins(read_studio_templates(config.templates_dir))
        clock = clock or Clock()
        store = Store(config.db, config.data_dir, wall=clock.wall, mono=clock.mono)
        events = EventBus()
        registry = ClientRegistry(events, wall=clock.wall)
        farm = JobFarm(
            JobStore(store),
            events,
            registry,
            config.data_dir,
            wall=clock.wall,
            mono=clock.mono,
            heartbeat_timeout_s=config.heartbeat_timeout_s,
            log_retention_days=config.log_retention_days,
            job_retention_days=config.job_retention_days,
        )
        devices = DeviceHub(
            DeviceStore(store),
            registry,
            events,
            wall=clock.wall,
            mono=clock.mono,
            drink_session_gap_s=config.drink_session_gap_s,
        )
        registry.watch(farm)
        registry.watch(devices)
        # Node reports live in memory only; nodes resend them on every (re)connect.
        procs = ProcBoard(
            events, wall=clock.wall, mono=clock.mono, offline_ttl_s=config.procs_offline_ttl_s
        )
        registry.watch(procs)
        # Masters sharing a PostgreSQL database elect the active one through the lease.
        self.lease = (
            LeaseKeeper(
                LeaseStore(config.db or "", config.data_dir),
                holder_name(config.host, config.port),
                config.lease_s,
                mono=clock.mono,
            )
            if store.backend == "postgresql"
            else None
        )
        # Why this master stepped down (lost the lease); "" while it has not.
        self.stepped_down = ""
        self.saver = ClientSaver(registry, store, config.save_interval_s, mono=clock.mono)
        audit = AuditLog(AuditStore(store), config.audit_retention_days, clock.wall)
        farm.on_expired.append(
            lambda ids: audit.record_by_master("jobs.delete", {"job_ids": ids}, "job retention")
        )
        durability = Durability(
            store, registry, self.saver, farm.journal, devices.readings, audit, mono=clock.mono
        )
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
            durability=durability,
            audit=audit,
            webhooks=WebhookDispatcher(
                WebhookStore(store),
                events,
                clock.wall,
                first_retry_s=config.webhook_first_retry_s,
            ),
            templates=templates,
            role_view=self.lease.view if self.lease is not None else always_active_view,
        )
        self.api = Api(self.services)
        self.server = MasterServer(self.services, self.api)
        self.tls_server = (
            TlsMasterServer(self.services, self.api, tls_context) if tls_context else None
        )
        self.reaper = HeartbeatReaper(
            self.services.registry,
            timeout_s=config.heartbeat_timeout_s,
            interval_s=config.heartbeat_s / 2,
            mono=clock.mono,
            wall=clock.wall,
        )
        self.mqtt = (
            MqttBridge(
                parse_mqtt_url(config.mqtt),
                self.services,
                client_id=f"farmhand-master-{socket.gethostname()}-{os.getpid()}",
            )
            if config.mqtt
            else None
        )
        if self.mqtt is not None:
            self.services.status_parts["mqtt"] = self.mqtt.status
        self.services.status_parts["webhooks"] = self.services.webhooks.status
        self.mailer = Mailer(config.email, events) if config.email is not None else None
        self._stop_requested = Event()

    @property
    def address(self) -> tuple[str, int]:
        return self.services.listen_address

    def start(self, on_standby: Callable[[str], None] = lambda holder: None) -> bool:
        """Open the database, wait as a standby while another master holds the lease (calling
        `on_standby(holder)` once), then load everything and listen. False when a stop was
        requested while standing by (nothing is listening then)."""
        services = self.services
        self.config.data_dir.mkdir(parents=True, exist_ok=True)
        version = services.store.open()
        log.info("database %s (schema version %d)", services.store.description, version)
        if self.lease is not None:
            if not self.lease.wait_until_active(self._stop_requested, on_standby):
                self.lease.stop()
                services.store.close()
                return False
            assert self.lease.machine.generation is not None
            services.store.fresh_connection()
            services.store.fence(self.lease.machine.generation, self.lease.write_fenced)
        began = time.perf_counter()
        records = services.store.load_clients()
        services.registry.load(records)
        log.info("loaded %d clients in %.3fs", len(records), time.perf_counter() - began)
        services.keys.load()
        services.farm.load()
        services.devices.load()
        services.webhooks.load()
        if self.config.require_key:
            self._ensure_admin_key()
        services.started = services.clock.wall()
        try:
            self._listen(self.server, self.config.port)
            if self.tls_server is not None:
                assert self.config.tls_port is not None
                self._listen(self.tls_server, self.config.tls_port)
        except ListenError:
            self.server.close()
            if self.lease is not None:
                self.lease.stop()
            services.store.close()
            raise
        services.listen_address = self.server.address[:2]
        if self.tls_server is not None:
            services.tls_address = self.tls_server.address[:2]
        self.saver.start()
        self.reaper.start()
        services.farm.start()
        services.devices.start()
        services.audit.start()
        services.webhooks.start()
        if self.mailer is not None:
            self.mailer.start()
        if self.lease is not None:
            self.lease.start(self._lost_lease)
        if self.mqtt is not None:
            self.mqtt.start()
        log.info("listening on %s:%d", *services.listen_address)
        if services.tls_address is not None:
            log.info("listening for TLS on %s:%d", *services.tls_address)
        return True

    def _listen(self, server: MasterServer, port: int) -> None:
        try:
            server.start()
        except OSError as exc:
            raise ListenError(self.config.host, port, exc) from None

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

    def _lost_lease(self, reason: str) -> None:
        # Another master is active: nobody may reach this one any more.
        self.stepped_down = reason
        self._close_ports()
        self._stop_requested.set()

    def _close_ports(self) -> None:
        self.server.close()
        if self.tls_server is not None:
            self.tls_server.close()

    def _stop_loops(self) -> None:
        """The saver, the farm's, the hub's and the audit log's loops, webhooks, email and MQTT."""
        self.saver.stop()
        self.services.farm.stop()
        self.services.devices.stop()
        self.services.audit.stop()
        self.services.webhooks.stop()
        if self.mailer is not None:
            self.mailer.stop()
        if self.mqtt is not None:
            self.mqtt.stop()

    def _end_sessions(self, reason: str) -> None:
        """No more peers, no new work: the ports close, the reaper stops, the farm begins its
        shutdown and every connection is closed with `reason`."""
        self._close_ports()
        self.reaper.stop()
        self.services.farm.begin_shutdown()
        for connection in list(self.services.connections):
            connection.close(reason)

    def abandon(self) -> None:
        """After losing the lease: close every connection and loop, write nothing (the storage
        is fenced: the other master owns the database now), close the database."""
        services = self.services
        self._end_sessions("this master stepped down: another one is active")
        self._stop_loops()
        if self.lease is not None:
            self.lease.stop()
        services.store.close()
        log.warning("stepped down (%s): dropped what was not stored", self.stepped_down)

    def serve_until_stopped(self) -> None:
        self._stop_requested.wait()

    def stop(self) -> int:
        """Stop cleanly; the exit status: 0, or EXIT_UNSAVED when some changes could not be
        stored because the database stayed unavailable for the whole shutdown timeout."""
        services = self.services
        timeout_s = self.config.shutdown_timeout_s
        log.info("stopping: closing the port and %d connections", len(services.connections))
        self._end_sessions("master shutting down")
        with gevent.Timeout(timeout_s, False):
            while services.connections:
                gevent.sleep(0.01)
        self._stop_loops()
        began = time.perf_counter()
        if not services.store.health.healthy:
            log.warning(
                "the database is unavailable (%s): waiting up to %.0f s for it to store what "
                "is pending",
                services.store.health.last_error,
                timeout_s,
            )
        unsaved = services.durability.drain(timeout_s)
        services.webhooks.store_log()
        if self.lease is not None:
            self.lease.stop()  # released only now: a standby takes over what was stored
        services.store.close()
        if unsaved:
            log.error(
                "stopped, but these changes could not be stored (the database is unavailable: "
                "%s): %s",
                services.store.health.last_error,
                "; ".join(unsaved),
            )
            return EXIT_UNSAVED
        log.info("stored everything pending in %.3fs; stopped", time.perf_counter() - began)
        return 0
