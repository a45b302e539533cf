"""The method table behind the JSON-RPC API and the console: one control surface for both.

A method is an entry `Method(name, handler, access, summary, params, …)`. Each api module
collects its own entries with `method = collector(METHODS)` and `@method(name, access,
params=(…))`; farmhand/master/api/__init__.py assembles the modules' tables from an explicit
list (a name declared twice is an error there). Nothing registers itself by being imported.

`params` declares every parameter the method accepts (name, type, default, bounds or choices,
one line on what it is): `parse_params` reads the call's params from that declaration and
the handler `(services, session, p)` receives `p`, a dict of the checked values (defaults
filled in). A parameter the method does not declare is refused (-32602, `unknown_param`).
The same declaration is what `rpc.discover` and docs/api.md describe.

`access` says which operators may call it (anyone even before `hello`, read-only and admin
keys, admin keys only, or no operator: agents only); `agents` lists the agent roles that may
call it too. permissions.py turns this into the permission table that surface.py enforces and
docs/security.md shows. `writes` marks an operator's state-changing call (it is audited, and
answered only once its change is stored); agents' reports are not marked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from ..params import (
    REQUIRED,
    Kind,
    Param,
    anything,
    boolean,
    integer,
    integer_list,
    mapping,
    number,
    parse_params,
    record_id,
    string,
    text_list,
)

__all__ = [
    "REQUIRED",
    "Access",
    "Args",
    "Kind",
    "Method",
    "Param",
    "anything",
    "assemble",
    "boolean",
    "collector",
    "integer",
    "integer_list",
    "mapping",
    "number",
    "parse_params",
    "record_id",
    "string",
    "text_list",
]

if TYPE_CHECKING:
    from farmhand.master.services import Services
    from farmhand.master.session import Session


class Access(StrEnum):
    OPEN = "open"  # callable before authorisation: hello
    READ = "read"  # operators: trusted peers, `api` keys of scope read or admin
    ADMIN = "admin"  # trusted peers and `api` keys of scope admin
    AGENT = "agent"  # no operator: only the agent roles listed in `agents`, after hello


# What a handler receives: its declared params, checked, with defaults filled in.
Args = dict[str, Any]
Handler = Callable[["Services", "Session", Args], Any]


@dataclass(frozen=True, slots=True)
class Method:
    name: str
    handler: Handler
    access: Access
    summary: str
    params: tuple[Param, ...] = ()
    writes: bool = False
    # Agent roles (worker, hardware, auth, node) that may call it, after their hello.
    agents: frozenset[str] = field(default_factory=frozenset)

    def parse(self, params: dict[str, Any]) -> dict[str, Any]:
        return parse_params(self.name, self.params, params)


def collector(
    table: list[Method],
) -> Callable[..., Callable[[Handler], Handler]]:
    """A decorator that appends an entry to one module's own `table` (and nothing else):
    `@method(name, access, params=(…), writes=…, agents=…)`. The summary is the handler's
    docstring's first line."""

    def method(
        name: str,
        access: Access,
        *,
        params: Iterable[Param] = (),
        writes: bool = False,
        agents: Iterable[str] = (),
    ) -> Callable[[Handler], Handler]:
        def collect(handler: Handler) -> Handler:
            summary = (handler.__doc__ or "").strip().split("\n\n")[0]
            table.append(
                Method(
                    name,
                    handler,
                    access,
                    " ".join(summary.split()),
                    tuple(params),
                    writes,
                    frozenset(agents),
                )
            )
            return handler

        return collect

    return method


def assemble(tables: Iterable[Iterable[Method]]) -> dict[str, Method]:
    """One table from the modules' tables; a name declared twice, a parameter declared twice
    or an agents-only method naming no agent is an error here, at import of the api package."""
    methods: dict[str, Method] = {}
    for table in tables:
        for entry in table:
            if entry.name in methods:
                raise RuntimeError(f"method {entry.name} declared twice")
            if entry.access is Access.AGENT and not entry.agents:
                raise RuntimeError(f"method {entry.name} is for agents but names no agent role")
            names = [param.name for param in entry.params]
            if len(set(names)) != len(names):
                raise RuntimeError(f"method {entry.name} declares a parameter twice")
            if not entry.summary:
                raise RuntimeError(f"method {entry.name} has no summary (its docstring)")
            methods[entry.name] = entry
    return methods
