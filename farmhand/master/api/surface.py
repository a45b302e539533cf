"""Calling a method: look it up, check the caller may use it, check params, run it, and
record a state-changing call in the audit log. Writes go through the durability barrier
(farmhand/master/durability.py): refused while the database is down, answered once stored.

The RPC connection, the console and (through RPC) the dashboard all come through `Api.call`.
`on_behalf_of` names the dashboard user an admin connection acts for (docs/protocol.md).
"""

from __future__ import annotations

import logging
from typing import Any

from gevent.event import AsyncResult

from protocol.errors import ErrorCode, RpcError, conflict, unauthorized

from ..services import Services
from ..session import Session
from . import METHODS, Access, Method
from .permissions import allows

log = logging.getLogger(__name__)


class Api:
    def __init__(self, services: Services) -> None:
        self.services = services

    def call(
        self,
        session: Session,
        name: str,
        params: dict[str, Any],
        on_behalf_of: str | None = None,
    ) -> Any:
        entry = METHODS.get(name)
        if entry is None:
            raise RpcError(ErrorCode.METHOD_NOT_FOUND, f"no such method {name!r}", "no_such_method")
        if on_behalf_of is not None:
            check_on_behalf_of(session, on_behalf_of)
        if not entry.writes:
            check_access(session, entry)
            return self._run(session, entry, params)
        return self._call_audited(session, entry, params, on_behalf_of)

    def _run(self, session: Session, entry: Method, params: dict[str, Any]) -> Any:
        return self.services.durability.call(
            entry.name,
            entry.writes,
            lambda: entry.handler(self.services, session, entry.parse(params)),
        )

    def _call_audited(
        self, session: Session, entry: Method, params: dict[str, Any], user: str | None
    ) -> Any:
        """Run a state-changing call and record it with its outcome (refusals of authorised
        callers included; unauthenticated ones are not, so nobody can flood the log)."""
        audit = self.services.audit
        try:
            check_access(session, entry)
            result = self._run(session, entry, params)
        except Exception as exc:
            if session.authorized:
                audit.record(session, entry.name, params, user, exc)
            raise
        if isinstance(result, AsyncResult):  # answered once stored: record how it ended
            result.rawlink(
                lambda done: audit.record(session, entry.name, params, user, done.exception)
            )
        else:
            audit.record(session, entry.name, params, user, None)
        return result


MAX_USER_CHARS = 64


def check_on_behalf_of(session: Session, user: object) -> None:
    """Only an admin connection (the dashboard's) may say which of its users acts."""
    if session.principal != "admin":
        raise unauthorized("on_behalf_of: only an admin connection may act for a user", "forbidden")
    if not isinstance(user, str) or not 0 < len(user) <= MAX_USER_CHARS:
        raise RpcError(
            ErrorCode.INVALID_REQUEST,
            f"on_behalf_of must be a user name of 1-{MAX_USER_CHARS} characters",
            "bad_on_behalf_of",
        )


def check_access(session: Session, entry: Method) -> None:
    """The one place where the permission table is enforced (docs/security.md shows it)."""
    name = entry.name
    if entry.access is Access.OPEN:
        return
    if not session.authorized:
        raise unauthorized(
            f"{name}: not authorised: call hello with a valid key first", "key_required"
        )
    client = session.client
    if client is not None and client.role in entry.agents:
        return  # an agent calling one of its own methods
    if entry.access is Access.AGENT:
        roles = " or ".join(sorted(entry.agents))
        if session.trusted:  # it may say that hello: a matter of state, not of permission
            raise conflict(f"{name}: say hello as a {roles} agent first", "hello_required")
        raise unauthorized(f"{name}: only {roles} agents may call this", "forbidden")
    principal = session.principal
    if principal is not None and allows(entry, principal):
        return
    if entry.access is Access.ADMIN:
        raise unauthorized(f"{name}: needs an admin api key", "admin_required")
    raise unauthorized(f"{name}: not allowed for a {principal} key", "forbidden")
