"""The audit log: every state-changing call (a method with `writes=True`) made through JSON-RPC,
the console or the dashboard, with who made it, from where, and its params, secrets redacted.

Recording costs the hub a dict walk; entries wait in memory and a flush writes them in one
transaction every FLUSH_INTERVAL_S (as the client saver and the readings do), so a call never
waits for the audit. Entries older than `retention_days` are pruned every PRUNE_INTERVAL_S.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from typing import Any

import orjson

from models.auditstore import AuditRecord, AuditStore
from models.health import DatabaseUnavailable
from protocol.errors import RpcError
from protocol.times import iso_utc

from .session import Session
from .ticker import Ticker

log = logging.getLogger(__name__)

FLUSH_INTERVAL_S = 0.2
PRUNE_INTERVAL_S = 3600.0
# Entries kept in memory while the database is failing, before the oldest are dropped.
MAX_PENDING = 100_000
REDACTED = "[redacted]"
# A write's params are bounded by the line limit (1 MiB); the audit keeps a readable summary.
MAX_PARAMS_BYTES = 8192
MAX_DEPTH = 12
MAX_ITEMS = 2000
# Field names that hold secrets: passwords, keys, tokens (an RFID token opens a tap), and env
# variables such as AWS_SECRET_ACCESS_KEY or GITHUB_TOKEN. `key_id` names a key; it is kept.
_SECRET_NAME = re.compile(
    r"(?:^|[_.-])(?:password|passwd|pass|secret|token|key|credentials?|auth)$", re.IGNORECASE
)
_KEY_PREFIX = "fhk_"
_JSON_INTS = (-(2**63), 2**64 - 1)


def redact(value: Any) -> Any:
    """`value` with secrets replaced by "[redacted]", bounded in depth and size."""
    budget = [MAX_ITEMS]
    return _redact(value, 0, budget)


def _redact(value: Any, depth: int, budget: list[int]) -> Any:
    budget[0] -= 1
    if budget[0] < 0 or depth > MAX_DEPTH:
        return "…"
    if isinstance(value, str):
        return REDACTED if value.startswith(_KEY_PREFIX) else value
    if (
        isinstance(value, int)
        and not isinstance(value, bool)
        and not _JSON_INTS[0] <= value <= _JSON_INTS[1]
    ):
        return str(value)  # the console can type numbers JSON (and orjson) cannot carry
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {
            str(name): REDACTED
            if _SECRET_NAME.search(str(name))
            else _redact(item, depth + 1, budget)
            for name, item in value.items()
        }
    if isinstance(value, list):
        return [_redact(item, depth + 1, budget) for item in value]
    return value


def params_json(params: dict[str, Any]) -> str:
    text = orjson.dumps(redact(params)).decode()
    if len(text) <= MAX_PARAMS_BYTES:
        return text
    return orjson.dumps({"truncated": True, "bytes": len(text)}).decode()


def describe_caller(session: Session, user: str | None) -> str:
    """`loopback`, `key 3fa2b1c0d9e8 (dashboard)`, or `user alice via key 3fa2b1c0d9e8 (…)`."""
    key = session.key
    if key is not None:
        source = f"key {key.key_id}" + (f" ({key.name})" if key.name else "")
    else:
        source = "loopback" if session.trusted else "unknown"
    return f"user {user} via {source}" if user else source


class AuditLog:
    def __init__(self, store: AuditStore, retention_days: float, wall: Callable[[], float]) -> None:
        self.store = store
        self.retention_days = retention_days
        self.wall = wall
        self.recorded_total = 0
        self.dropped_total = 0
        self._pending: list[AuditRecord] = []
        self._flusher = Ticker("audit log", FLUSH_INTERVAL_S, self.flush)
        self._pruner = Ticker("audit pruner", PRUNE_INTERVAL_S, lambda: self.prune(self.wall()))

    def record(
        self,
        session: Session,
        method: str,
        params: dict[str, Any],
        user: str | None,
        error: BaseException | None,
    ) -> None:
        code: int | None = None
        message: str | None = None
        if isinstance(error, RpcError):
            code, message = int(error.code), error.message
        elif error is not None:
            code, message = -32603, "internal error"
        self._pending.append(
            AuditRecord(
                time=self.wall(),
                who=describe_caller(session, user),
                key_id=session.key_id,
                username=user,
                peer=session.peer,
                via=session.dialect,
                method=method,
                params=params_json(params),
                error_code=code,
                error=message,
            )
        )
        self.recorded_total += 1
        if len(self._pending) > MAX_PENDING:
            del self._pending[0]
            self.dropped_total += 1

    def record_by_master(self, method: str, params: dict[str, Any], why: str) -> None:
        """A change the master made by itself (e.g. the job retention), as `master (why)`."""
        self._pending.append(
            AuditRecord(
                time=self.wall(),
                who=f"master ({why})",
                key_id=None,
                username=None,
                peer="",
                via="master",
                method=method,
                params=params_json(params),
                error_code=None,
                error=None,
            )
        )
        self.recorded_total += 1

    def flush(self) -> int:
        batch, self._pending = self._pending, []
        if not batch:
            return 0
        try:
            self.store.insert(batch)
        except Exception as exc:
            if not isinstance(exc, DatabaseUnavailable):  # an outage is logged by the Store
                log.exception("storing %d audit entries failed; will retry", len(batch))
            self._pending = (batch + self._pending)[-MAX_PENDING:]
            return 0
        return len(batch)

    @property
    def pending(self) -> int:
        """Entries recorded but not yet in the database."""
        return len(self._pending)

    def entries(self, limit: int, since: float | None) -> list[dict[str, Any]]:
        """Newest first; what is still waiting in memory is written first, so it shows."""
        self.flush()
        return [entry_view(record) for record in self.store.newest(limit, since)]

    def prune(self, now: float) -> int:
        if self.retention_days <= 0:
            return 0
        removed = self.store.prune(now - self.retention_days * 86400)
        if removed:
            log.info(
                "audit log: pruned %d entries older than %g days", removed, self.retention_days
            )
        return removed

    def start(self) -> None:
        try:
            self.prune(self.wall())  # a master restarted every hour would otherwise never prune
        except Exception:
            log.exception("audit log: pruning failed; will retry")
        self._flusher.start()
        self._pruner.start()

    def stop(self) -> None:
        self._flusher.stop()
        self._pruner.stop()
        self.flush()


def entry_view(record: AuditRecord) -> dict[str, Any]:
    """The `audit.list` row, plus the key, the user and how the call came."""
    return {
        "time": iso_utc(record.time),
        "who": record.who,
        "peer": record.peer,
        "method": record.method,
        "params": orjson.loads(record.params),
        "key_id": record.key_id,
        "user": record.username,
        "via": record.via,
        "error": None
        if record.error_code is None
        else {"code": record.error_code, "message": record.error},
    }
