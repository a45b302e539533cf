"""Calling a method: look it up, check the caller may use it, check params, run it.

The RPC connection, the console and (through RPC) the dashboard all come through `Api.call`.
"""

from __future__ import annotations

import logging
from typing import Any

from protocol.errors import ErrorCode, RpcError, conflict, unauthorized

from .methods import METHODS, Access, Method
from .methods.permissions import allows
from .params import Params
from .services import Services
from .session import Session

log = logging.getLogger(__name__)


class Api:
    def __init__(self, services: Services) -> None:
        self.services = services

    def call(self, session: Session, name: str, params: dict[str, Any]) -> Any:
        entry = METHODS.get(name)
        if entry is None:
            raise RpcError(ErrorCode.METHOD_NOT_FOUND, f"no such method {name!r}", "no_such_method")
        check_access(session, entry)
        return entry.handler(self.services, session, Params(name, params))


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
