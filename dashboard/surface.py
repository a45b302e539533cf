"""Which master methods /api/<method> serves, read from the master's own method table: the
dashboard asks `rpc.discover` (an OpenRPC document, docs/api.md) once connected and keeps it.

Reads are the methods an admin may call that change nothing, each with its declared params
and their types (to convert query strings); those a read-only key may not call are for the
dashboard's admins only. Writes are the state-changing (audited) methods, for admins. A few
are never served: a connection's own methods and the password check (logins use it in
dashboard/logins.py, never as a GET with the password in the URL).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

NOT_SERVED = frozenset(
    {"hello", "heartbeat", "ping", "subscribe", "unsubscribe", "users.authenticate"}
)
INT, NUMBER, TEXT, BOOL = "int", "number", "text", "bool"
# A query string carries scalars; list and object params are not offered as query params.
QUERY_KINDS = {"integer": INT, "number": NUMBER, "string": TEXT, "boolean": BOOL}


@dataclass(frozen=True)
class Surface:
    # Read methods and their query parameters: name → kind.
    reads: dict[str, dict[str, str]]
    admin_reads: frozenset[str]
    writes: frozenset[str]


def surface_of(discovered: dict[str, Any]) -> Surface:
    reads: dict[str, dict[str, str]] = {}
    admin_reads: set[str] = set()
    writes: set[str] = set()
    for entry in discovered["methods"]:
        name, principals = entry["name"], entry["x-access"]["principals"]
        if name in NOT_SERVED or "admin" not in principals:
            continue
        if entry["x-writes"]:
            writes.add(name)
            continue
        reads[name] = {
            param["name"]: QUERY_KINDS[param["schema"]["type"]]
            for param in entry["params"]
            if param["schema"].get("type") in QUERY_KINDS
        }
        if "read" not in principals:
            admin_reads.add(name)
    return Surface(reads, frozenset(admin_reads), frozenset(writes))
