"""JSON-RPC methods, one module per concern; each module's `METHODS` lists its entries and
`MODULES` below says which modules make the API (the console's MODULES mirror it, by name).
The assembled `METHODS` maps each name to its entry; a name declared twice fails here."""

from . import (
    alerts,
    audit,
    clients,
    devices,
    jobs,
    keys,
    people,
    pours,
    procs,
    rpc,
    session,
    sim,
    stats,
    tasks,
    webhooks,
)
from .base import Access, Method, Param, assemble

MODULES = (
    session,
    clients,
    keys,
    jobs,
    tasks,
    procs,
    devices,
    people,
    stats,
    pours,
    alerts,
    sim,
    audit,
    webhooks,
    rpc,
)
METHODS: dict[str, Method] = assemble(module.METHODS for module in MODULES)

__all__ = ["METHODS", "MODULES", "Access", "Method", "Param"]
