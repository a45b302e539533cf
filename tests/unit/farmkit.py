"""An in-process job farm for fake-clock tests: the real JobFarm, board, journal and dispatcher
on a real SQLite file, driven step by step (no greenlets started, no sockets, no sleeps).
Workers are RuntimeClients whose connection records the orders it is given."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from farmhand.master.clock import FakeClock
from farmhand.master.events import EventBus
from farmhand.master.jobs import reports
from farmhand.master.jobs.farm import JobFarm
from farmhand.master.jobs.submit import SUBMIT_PARAMS, build_records, read_submission
from farmhand.master.params import parse_params
from farmhand.master.registry import RuntimeClient
from models.jobstore import JobStore
from models.store import ClientRecord, Store

HEARTBEAT_TIMEOUT_S = 15.0


class OrderLog:
    """A worker's connection: orders are kept, unanswered, until the test answers them."""

    def __init__(self) -> None:
        self.orders: list[tuple[str, dict[str, Any], Any]] = []
        self.closed = False

    def call_async(self, method: str, params: dict[str, Any], on_reply: Any) -> None:
        self.orders.append((method, params, on_reply))

    def close(self, reason: str) -> None:
        self.closed = True

    def take(self, method: str = "task.run") -> list[dict[str, Any]]:
        """The params of the `method` orders given so far (each accepted with {})."""
        taken = [entry for entry in self.orders if entry[0] == method]
        self.orders = [entry for entry in self.orders if entry[0] != method]
        for _, _, on_reply in taken:
            on_reply({}, None)
        return [params for _, params, _ in taken]


class FarmKit:
    def __init__(self, tmp_path: Path, clock: FakeClock | None = None) -> None:
        self.tmp_path = tmp_path
        self.clock = clock or FakeClock()
        self.store = Store(f"sqlite:///{tmp_path / 'farm.db'}", tmp_path)
        self.store.open()
        self.farm = self._new_farm()

    def _new_farm(self) -> JobFarm:
        farm = JobFarm(
            JobStore(self.store),
            EventBus(),
            self.tmp_path,
            wall=self.clock.wall,
            mono=self.clock.mono,
            heartbeat_timeout_s=HEARTBEAT_TIMEOUT_S,
        )
        farm.load()
        return farm

    def restart(self) -> JobFarm:
        """A new farm on the same database (what a master restart loads)."""
        self.farm.journal.flush()
        self.farm.logs.close_all()
        self.farm = self._new_farm()
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
        client = RuntimeClient(
            ClientRecord(1, name, "worker", "host", True, list(tags), slots, None, None, {})
        )
        client.online = True
        client.connection = OrderLog()
        self.farm.client_changed(client, "online")
        self.farm.reconcile_worker(client, list(attempts))
        return client

    def submit(self, **params: Any) -> int:
        params.setdefault("name", "job")
        params.setdefault("argv", ["render", "{task}"])
        board = self.farm.board
        spec = read_submission(
            parse_params("jobs.submit", SUBMIT_PARAMS, params), board.jobs, 100_000
        )
        job_id, first = board.next_job_id, board.next_task_id
        board.next_job_id += 1
        board.next_task_id += len(spec["chunks"])
        job, tasks = build_records(spec, job_id, first, self.clock.wall())
        self.farm.jobstore.insert_job(job, tasks)
        board.add_job(job, tasks)
        return job_id

    def dispatch(self) -> None:
        """One dispatcher pass at the current time, and the commit that lets its orders go."""
        self.farm.dispatcher.run_once(self.clock.mono())
        self.farm.journal.flush()

    def orders(self, worker: RuntimeClient) -> list[dict[str, Any]]:
        self.dispatch()
        return worker.connection.take()

    def finish(self, worker: RuntimeClient, order: dict[str, Any], exit_code: int = 0) -> None:
        reports.task_finished(self.farm, worker, order["attempt"], exit_code, None)
        self.farm.journal.flush()
