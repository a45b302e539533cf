"""Calling a method: look it up, check the caller may use it, check params, run it.

The RPC connection, the console and (through RPC) the dashboard all come through `Api.call`.
"""

from __future__ import annotations

import logging
from typing import Any

from protocol.errors import ErrorCode, RpcError, unauthorized

from .methods import METHODS, Access
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
        self._check_access(session, entry.access, name)
        # Writes are refused while the database is down and answered once stored.
        return self.services.durability.call(
            name, entry.writes, lambda: entry.handler(self.services, session, Params(name, params))
        )

    def _check_access(self, session: Session, access: Access, name: str) -> None:
        if access is Access.OPEN:
            return
        if not session.authorized:
            raise unauthorized(
                f"{name}: not authorised: call hello with a valid key first", "key_required"
            )
        if access is Access.AGENT and session.client is None:
            raise RpcError(
                ErrorCode.CONFLICT, f"{name}: say hello as an agent first", "hello_required"
            )
        if access is Access.ADMIN and not session.is_admin:
            raise unauthorized(f"{name}: needs an api key", "admin_required")
