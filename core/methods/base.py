"""The method table behind the JSON-RPC API and the console: one control surface for both.

A method is a function `(services, session, params) -> result` registered with `@method(name,
access)`. `access` says who may call it: anyone (even before `hello`), any authorised peer, an
agent that said hello, or an admin. `writes` marks an operator's state-changing call (it is
audited, and answered only once its change is stored); agents' reports are not marked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.params import Params
    from core.services import Services
    from core.session import Session


class Access(StrEnum):
    OPEN = "open"  # callable before authorisation: hello
    READ = "read"  # any authorised peer
    AGENT = "agent"  # an agent connection after hello
    ADMIN = "admin"  # trusted peers and `api` keys


Handler = Callable[["Services", "Session", "Params"], Any]


@dataclass(frozen=True, slots=True)
class Method:
    name: str
    handler: Handler
    access: Access
    summary: str
    writes: bool = False


METHODS: dict[str, Method] = {}


def method(name: str, access: Access, *, writes: bool = False) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        if name in METHODS:
            raise RuntimeError(f"method {name} registered twice")
        summary = (handler.__doc__ or "").strip().splitlines()[0] if handler.__doc__ else ""
        METHODS[name] = Method(name, handler, access, summary, writes)
        return handler

    return register
