"""The in-process kit: the master's real parts on a real SQLite file in tmp_path, driven step by
step with the fake clock (time is passed in, nothing sleeps, no sockets).

- `FakePeer` stands in for an agent's connection (ports.Peer): it records every order and
  answers one only when the test says so (`take`, `answer`).
- `FarmKit` builds the job farm over a real client registry; workers say hello through the
  registry, dispatch runs one pass at a time and the journal commits when the test flushes it.
- `MasterKit` builds the whole `Services` (app.Master without its servers and tickers): API
  methods are called through the method table (`Api.call`) and console commands through the
  console's command table, as a peer's connection would call them.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gevent.event import AsyncResult

from farmhand.master.app import Master
from farmhand.master.clock import FakeClock
from farmhand.master.config import MasterConfig
from farmhand.master.console.shell import ConsoleConnection
from farmhand.master.events import EventBus
from farmhand.master.jobs import history
from farmhand.master.jobs.board import JobState
from farmhand.master.jobs.farm import JobFarm
from farmhand.master.jobs.submit import SUBMIT_PARAMS, read_submission
from farmhand.master.params import parse_params
from farmhand.master.ports import ReplyCallback
from farmhand.master.registry import ClientRegistry, RuntimeClient
from farmhand.master.session import Session
from models.jobstore import JobStore
from models.store import Store
from protocol.errors import RpcError

HEARTBEAT_TIMEOUT_S = 15.0


@dataclass
class Order:
    method: str
    params: dict[str, Any]
    on_reply: ReplyCallback | None  # None: sent with `call` (already answered) or `notify`


class FakePeer:
    """A peer's connection (ports.Peer): orders are kept, unanswered, until the test answers.
    `call` (the master waiting for the answer) gets `answers[method]`, or {}."""

    def __init__(self, name: str = "peer") -> None:
        self.name = name
        self.orders: list[Order] = []
        self.answers: dict[str, Any] = {}
        self.close_reason: str | None = None

    @property
    def closed(self) -> bool:
        return self.close_reason is not None

    def call(self, method: str, params: dict[str, Any], timeout: float = 10.0) -> Any:
        self.orders.append(Order(method, params, None))
        answer = self.answers.get(method, {})
        if isinstance(answer, RpcError):
            raise answer
        return answer

    def call_async(self, method: str, params: dict[str, Any], on_reply: ReplyCallback) -> None:
        self.orders.append(Order(method, params, on_reply))

    def notify(self, method: str, params: dict[str, Any]) -> None:
        self.orders.append(Order(method, params, None))

    def close(self, reason: str) -> None:
        self.close_reason = self.close_reason or reason

    def sent(self, method: str) -> list[dict[str, Any]]:
        """The params of every `method` order so far, answered or not, kept."""
        return [order.params for order in self.orders if order.method == method]

    def take(self, method: str = "task.run", error: RpcError | None = None) -> list[dict[str, Any]]:
        """The params of the `method` orders given so far, each answered ({} or `error`)."""
        taken = [order for order in self.orders if order.method == method]
        self.orders = [order for order in self.orders if order.method != method]
        for order in taken:
            if order.on_reply is not None:
                order.on_reply(None if error else {}, error)
        return [order.params for order in taken]


def peer_of(client: RuntimeClient) -> FakePeer:
    assert isinstance(client.connection, FakePeer), client.connection
    return client.connection


class FarmKit:
    def __init__(
        self, tmp_path: Path, clock: FakeClock | None = None, job_retention_days: float = 0.0
    ) -> None:
        self.tmp_path = tmp_path
        self.job_retention_days = job_retention_days
        self.clock = clock or FakeClock()
        self.store = Store(f"sqlite:///{tmp_path / 'farm.db'}", tmp_path)
        self.store.open()
        self.events = EventBus()
        self.registry, self.farm = self._new_farm()

    def _new_farm(self) -> tuple[ClientRegistry, JobFarm]:
        registry = ClientRegistry(self.events)
        farm = JobFarm(
            JobStore(self.store),
            self.events,
            registry,
            self.tmp_path,
            wall=self.clock.wall,
            mono=self.clock.mono,
            heartbeat_timeout_s=HEARTBEAT_TIMEOUT_S,
            job_retention_days=self.job_retention_days,
        )
        registry.watch(farm)
        farm.load()
        return registry, farm

    def restart(self) -> JobFarm:
        """A new farm (and registry) on the same database: what a master restart loads."""
        self.farm.journal.flush()
        self.farm.logs.close_all()
        self.registry, self.farm = self._new_farm()
        return self.farm

    def close(self) -> None:
        self.farm.journal.flush()
        self.farm.logs.close_all()
        self.store.close()

    def worker(
        self,
        name: str,
        slots: int = 1,
        tags: tuple[str, ...] = (),
        attempts: tuple[str, ...] = (),
    ) -> RuntimeClient:
        """A worker that says hello holding `attempts` (what the session's hello does)."""
        client, _ = self.registry.connect(
            name=name,
            role="worker",
            host="host",
            info={"slots": slots, "tags": list(tags)},
            connection=FakePeer(name),
            now=self.clock.wall(),
            now_mono=self.clock.mono(),
        )
        self.farm.reconcile_worker(client, list(attempts))
        return client

    def lose(self, worker: RuntimeClient, reason: str = "connection lost") -> None:
        """The worker's connection ends (what the session's end does)."""
        self.registry.disconnect(worker, worker.connection, self.clock.wall(), reason)

    def submit(self, **params: Any) -> int:
        params.setdefault("name", "job")
        params.setdefault("argv", ["render", "{task}"])
        spec = read_submission(
            parse_params("jobs.submit", SUBMIT_PARAMS, params),
            history.KnownJobs(self.farm),
            100_000,
        )
        return self.farm.submit(spec, self.clock.wall()).id

    def job(self, job_id: int) -> JobState:
        """The job as views see it: in memory, or as stored once it is finished and gone."""
        return history.view_job(self.farm, job_id)

    def dispatch(self) -> None:
        """One dispatcher pass at the current time, and the commit that lets its orders go."""
        self.farm.dispatcher.run_once(self.clock.mono())
        self.farm.journal.flush()

    def orders(self, worker: RuntimeClient) -> list[dict[str, Any]]:
        self.dispatch()
        return peer_of(worker).take()

    def finish(self, worker: RuntimeClient, order: dict[str, Any], exit_code: int = 0) -> None:
        self.farm.task_finished(worker, order["attempt"], exit_code, None)
        self.farm.journal.flush()


class MasterKit:
    """The whole master in process: `Services`, the method table and the console's commands,
    loaded from a real SQLite file, with no port opened and no ticker started. Only the job
    journal's greenlet runs (it waits on an event), so a write is answered once it is stored."""

    def __init__(self, tmp_path: Path, **settings: Any) -> None:
        self.clock = FakeClock()
        config = MasterConfig(host="127.0.0.1", port=0, data_dir=tmp_path / "var", **settings)
        self.master = Master(config, clock=self.clock)
        self.services = self.master.services
        self.api = self.master.api
        config.data_dir.mkdir(parents=True, exist_ok=True)
        services = self.services
        services.store.open()
        services.registry.load(services.store.load_clients())
        services.keys.load()
        services.farm.load()
        services.devices.load()
        services.webhooks.load()
        services.farm.journal.start()
        self.admin = Session("127.0.0.1", 1, "rpc", trusted=True)
        self._consoles: list[socket.socket] = []

    def close(self) -> None:
        for sock in self._consoles:
            sock.close()
        self.services.farm.journal.stop()
        self.services.farm.logs.close_all()
        self.services.store.close()

    def call(self, method: str, session: Session | None = None, **params: Any) -> Any:
        """A method through the method table, as a connection calls it; a deferred answer
        (task.finished) is waited for."""
        result = self.api.call(session or self.admin, method, params)
        if isinstance(result, AsyncResult):
            result = result.get(timeout=5)
        return result

    def agent(self, role: str, name: str, **hello: Any) -> tuple[Session, FakePeer]:
        """A trusted agent session that said hello over a FakePeer."""
        session = Session("127.0.0.1", 2, "rpc", trusted=True)
        peer = FakePeer(name)
        session.connection = peer  # type: ignore[assignment]  # a Peer without events
        self.call("hello", session, role=role, name=name, proto=1, **hello)
        return session, peer

    def console(self, line: str) -> str:
        """One console line through the console's command table, its text reply."""
        sock = socket.socket()  # never connected: execute() returns the text it would write
        self._consoles.append(sock)
        session = Session("127.0.0.1", 3, "console", trusted=True)
        connection = ConsoleConnection(sock, session, self.services, self.api)
        return connection.execute(line)

    def dispatch(self) -> None:
        """One dispatcher pass; its orders go once the journal committed them."""
        farm = self.services.farm
        farm.dispatcher.run_once(self.clock.mono())
        farm.journal.flush()
