"""The method table as an OpenRPC 1.2 document (https://spec.open-rpc.org): what rpc.discover
answers and docs/api.md is generated from.

Each method has its name, summary, params (by name: each with its JSON Schema, `default`
included, and `required`) and two extensions: `x-access` (the access level and every
principal that may call it, operators and agent roles, as permissions.py decides) and
`x-writes` (a state-changing call: audited, answered once stored).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from farmhand import __version__

from . import METHODS
from .base import Method
from .permissions import PRINCIPALS, allows

OPENRPC_VERSION = "1.2.6"
DESCRIPTION = (
    "The farmhand master's JSON-RPC 2.0 API over NDJSON on TCP (docs/protocol.md). "
    "Params are by name; a param a method does not declare is refused."
)


def method_document(entry: Method) -> dict[str, Any]:
    return {
        "name": entry.name,
        "summary": entry.summary,
        "paramStructure": "by-name",
        "params": [
            {
                "name": param.name,
                "summary": param.summary,
                "required": param.required,
                "schema": param.schema(),
            }
            for param in entry.params
        ],
        "result": {"name": "result", "schema": {}},
        "x-access": {
            "level": str(entry.access),
            "principals": [principal for principal in PRINCIPALS if allows(entry, principal)],
        },
        "x-writes": entry.writes,
    }


def document(methods: Mapping[str, Method] = METHODS) -> dict[str, Any]:
    return {
        "openrpc": OPENRPC_VERSION,
        "info": {"title": "farmhand", "version": __version__, "description": DESCRIPTION},
        "methods": [method_document(methods[name]) for name in sorted(methods)],
    }
