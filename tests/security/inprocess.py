"""An in-process master for fuzzing: the real services, a real SQLite store in a temp dir, the
real `Api`, and sessions whose connection is a recording stand-in instead of a socket, so a
fuzzer can call methods thousands of times a second without the network in the way."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import gevent

from farmhand.master.app import Master
from farmhand.master.config import MasterConfig
from farmhand.master.session import Session
from protocol.errors import ErrorCode, RpcError

MAX_RECORDED = 1000


class RecordingConnection:
    """What the master talks to for an agent: it accepts every order and keeps what it got."""

    def __init__(self, session: Session) -> None:
        self.session = session
        session.connection = self
        self.close_reason: str | None = None
        self.sent: list[bytes] = []
        self.orders: list[tuple[str, dict[str, Any]]] = []

    @property
    def closed(self) -> bool:
        return self.close_reason is not None

    def send_bytes(self, data: bytes) -> None:
        if len(self.sent) < MAX_RECORDED:
            self.sent.append(data)

    def notify(self, method: str, params: dict[str, Any]) -> None:
        self.orders.append((method, params))

    def call(self, method: str, params: dict[str, Any], timeout: float = 10.0) -> Any:
        self.orders.append((method, params))
        return {}

    def call_async(self, method: str, params: dict[str, Any], on_reply: Any) -> None:
        self.orders.append((method, params))
        gevent.spawn(on_reply, {}, None)

    def close(self, reason: str) -> None:
        self.close_reason = self.close_reason or reason


class ErrorLog(logging.Handler):
    """Keeps every ERROR record (and any with a traceback) logged while it is installed."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR or record.exc_info:
            self.records.append(record)

    def text(self) -> str:
        return "\n".join(self.format(record) for record in self.records)


class Farm:
    """`farm.session(role)` gives an authorised session of that principal."""

    def __init__(self, master: Master) -> None:
        self.master = master
        self.services = master.services
        self.api = master.api
        self.sessions: dict[str, Session] = {"admin": self._admin()}
        for role in ("worker", "hardware", "auth", "node"):
            self.sessions[role] = self._agent(role)

    def _admin(self) -> Session:
        session = Session("127.0.0.1", 1, "rpc", trusted=True)
        RecordingConnection(session)
        return session

    def _agent(self, role: str) -> Session:
        name = f"fuzz-{role}"
        _, key = self.services.keys.create(role, name, self.services.clock.wall())
        session = Session("10.9.9.9", 2, "rpc", trusted=False)
        RecordingConnection(session)
        self.api.call(session, "hello", {"role": role, "name": name, "proto": 1, "key": key})
        return session

    def call(self, session: Session, method: str, params: dict[str, Any]) -> Any:
        """The method's result; an RpcError is re-raised unless it is an internal error."""
        result = self.api.call(session, method, params)
        if isinstance(result, gevent.event.AsyncResult):
            result = result.get(timeout=10)
        return result


def is_internal(error: RpcError) -> bool:
    return error.code == ErrorCode.INTERNAL_ERROR


@contextmanager
def inprocess_farm(tmp_path: Path, **settings: Any) -> Iterator[Farm]:
    config = MasterConfig(
        host="127.0.0.1",
        port=0,
        data_dir=tmp_path / "var",
        max_tasks_per_job=1000,
        **settings,
    )
    master = Master(config)
    master.start()
    try:
        yield Farm(master)
    finally:
        master.stop()
