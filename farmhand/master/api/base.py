"""The method table behind the JSON-RPC API and the console: one control surface for both.

A method is a function `(services, session, params) -> result` registered with `@method(name,
access)`. `access` says which operators may call it (anyone even before `hello`, read-only and
admin keys, admin keys only, or no operator: agents only); `agents` lists the agent roles that
may call it too. permissions.py turns this into the permission table that surface.py enforces
and docs/security.md shows. `writes` marks an operator's state-changing call (it is audited,
and answered only once its change is stored); agents' reports are not marked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from farmhand.master.params import Params
    from farmhand.master.services import Services
    from farmhand.master.session import Session


class Access(StrEnum):
    OPEN = "open"  # callable before authorisation: hello
    READ = "read"  # operators: trusted peers, `api` keys of scope read or admin
    ADMIN = "admin"  # trusted peers and `api` keys of scope admin
    AGENT = "agent"  # no operator: only the agent roles listed in `agents`, after hello


Handler = Callable[["Services", "Session", "Params"], Any]


@dataclass(frozen=True, slots=True)
class Method:
    name: str
    handler: Handler
    access: Access
    summary: str
    writes: bool = False
    # Agent roles (worker, hardware, auth, node) that may call it, after their hello.
    agents: frozenset[str] = frozenset()


METHODS: dict[str, Method] = {}


def method(
    name: str, access: Access, *, writes: bool = False, agents: Iterable[str] = ()
) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        if name in METHODS:
            raise RuntimeError(f"method {name} registered twice")
        if access is Access.AGENT and not agents:
            raise RuntimeError(f"method {name} is for agents but names no agent role")
        summary = (handler.__doc__ or "").strip().splitlines()[0] if handler.__doc__ else ""
        METHODS[name] = Method(name, handler, access, summary, writes, frozenset(agents))
        return handler

    return register
