"""Durability for the API: what the master has not stored yet, and the one write barrier.

Every API call runs through `Durability.call`. An operator write (a method with `writes=True`)
is refused at once while the database is known to be down, changing nothing; otherwise it runs
and is answered only once the client saver and the job journal have committed everything that
was pending, so an OK always means stored. Storage failures reach the caller as -32603 with
data.reason "database_unavailable" and data.changed: false (nothing changed), true (changed in
memory, stored once the database is back) or null (the call failed inside the database).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import gevent

from models.health import DatabaseUnavailable
from models.lease import LeaseLost
from protocol.errors import ErrorCode, RpcError
from protocol.times import iso_utc

if TYPE_CHECKING:
    from models.store import Store

    from .audit import AuditLog
    from .devices.readings import ReadingSink
    from .jobs.journal import Journal
    from .registry import ClientRegistry
    from .saver import ClientSaver

log = logging.getLogger(__name__)

T = TypeVar("T")

UNAVAILABLE = "database_unavailable"
# How long a write waits for its commit before it is answered "not stored (yet)".
WRITE_TIMEOUT_S = 10.0
_POLL_S = 0.05  # how often a waiting write looks whether the database went down meanwhile


class Durability:
    def __init__(
        self,
        store: Store,
        registry: ClientRegistry,
        saver: ClientSaver,
        journal: Journal,
        readings: ReadingSink,
        audit: AuditLog,
        mono: Callable[[], float],
        write_timeout_s: float = WRITE_TIMEOUT_S,
    ) -> None:
        self._store = store
        self._registry = registry
        self._saver = saver
        self._journal = journal
        self._readings = readings
        self._audit = audit
        self._mono = mono
        self._write_timeout_s = write_timeout_s

    # -- what is pending -------------------------------------------------------------------------
    def pending(self) -> int:
        """Changes held in memory that the database has not taken yet."""
        return (
            self._saver.pending
            + self._journal.pending
            + self._readings.pending
            + self._audit.pending
        )

    def status(self) -> dict[str, Any]:
        """The `database` object of `status`."""
        view = self._store.health_view()
        return {
            "backend": view["backend"],
            "url": view["url"],
            "healthy": view["healthy"],
            "since": iso_utc(view["since"]),
            "last_error": view["last_error"],
            "reconnects": view["reconnects"],
            "failed_attempts": view["failed_attempts"],
            "down_s": view["down_s"],
            "pending_writes": self.pending(),
        }

    # -- the barrier -----------------------------------------------------------------------------
    def call(self, method: str, writes: bool, run: Callable[[], T]) -> T:
        """Run an API call: a write only while the database is up, answered once stored."""
        health = self._store.health
        if writes and not health.healthy:
            raise self._error(method, changed=False, detail="nothing was changed")
        try:
            result = run()
        except LeaseLost as exc:
            raise self._stepped_down(method) from exc
        except DatabaseUnavailable as exc:
            if not writes:
                raise self._error(method, changed=None, detail="try again later") from exc
            raise self._error(
                method, changed=None, detail="the call failed in the database: not stored"
            ) from exc
        if writes:
            self._commit(method)
        return result

    def _commit(self, method: str) -> None:
        """Wait until everything pending now is committed, or raise (changed: true)."""
        kept = "changed in memory, stored once the database is back"
        try:
            with gevent.Timeout(self._write_timeout_s):
                self._saver.flush()
                done = self._journal.committed()
                while not done.ready():
                    done.wait(_POLL_S)
                    if not done.ready() and not self._store.health.healthy:
                        raise self._error(method, changed=True, detail=kept)
        except LeaseLost as exc:
            raise self._stepped_down(method) from exc
        except DatabaseUnavailable as exc:
            raise self._error(method, changed=True, detail=kept) from exc
        except gevent.Timeout:
            log.warning("%s: not confirmed stored within %.0f s", method, self._write_timeout_s)
            raise RpcError(
                ErrorCode.INTERNAL_ERROR,
                f"{method}: not confirmed stored within {self._write_timeout_s:.0f} s (the "
                f"database is slow or hung): changed in memory, stored once it answers",
                UNAVAILABLE,
                {"changed": True, "stored": False},
            ) from None

    def _stepped_down(self, method: str) -> RpcError:
        return RpcError(
            ErrorCode.INTERNAL_ERROR,
            f"{method}: this master stepped down (another master took over the database): "
            "not stored; call the active master",
            UNAVAILABLE,
            {"changed": None, "stored": False, "retry_after_s": 0.0},
        )

    def _error(self, method: str, changed: bool | None, detail: str) -> RpcError:
        view = self._store.health_view()
        problem = view["last_error"] or "unknown error"
        return RpcError(
            ErrorCode.INTERNAL_ERROR,
            f"{method}: the database is unavailable ({problem}, since "
            f"{iso_utc(view['since'])}): {detail}",
            UNAVAILABLE,
            {"changed": changed, "stored": False, "retry_after_s": view["retry_in_s"]},
        )

    # -- shutdown --------------------------------------------------------------------------------
    def drain(self, timeout_s: float) -> list[str]:
        """Store every client and everything pending, retrying (as the backoff allows) until
        all is stored or `timeout_s` passed; the loops must be stopped. Returns what could not
        be stored, for the log: empty when everything is in the database."""
        deadline = self._mono() + timeout_s
        clients_saved = False
        while True:
            if not clients_saved:
                clients_saved = self._try("every client", self._saver.save_all)
            if self._journal.pending:
                self._journal.flush()
            if self._readings.pending:
                self._readings.flush()
            if self._audit.pending:
                self._audit.flush()
            left = self._left(clients_saved)
            remaining = deadline - self._mono()
            if not left or remaining <= 0:
                return left
            gevent.sleep(min(max(self._store.health.retry_in(self._mono()), _POLL_S), remaining))

    def _try(self, what: str, save: Callable[[], object]) -> bool:
        try:
            save()
        except DatabaseUnavailable:
            return False
        except Exception as exc:
            log.warning("storing %s failed: %r", what, exc)
            return False
        return True

    def _left(self, clients_saved: bool) -> list[str]:
        left = []
        if not clients_saved:
            names = self._registry.dirty_names()
            shown = ", ".join(names[:20]) + (" …" if len(names) > 20 else "")
            plural = "s" if len(names) != 1 else ""
            left.append(
                f"changes to {len(names)} client{plural} ({shown})"
                if names
                else "the clients' last-seen times"
            )
        if self._journal.pending:
            left.append(f"{self._journal.pending} job, task and blocklist changes")
        if self._readings.pending:
            left.append(f"{self._readings.pending} sensor readings")
        if self._audit.pending:
            left.append(f"{self._audit.pending} audit log entries")
        return left
