"""Console commands, one module per concern, named as the api's method modules are (session,
clients, keys, jobs, tasks, procs, devices, people, stats, pours, alerts, sim, audit,
webhooks).
`MODULES` is the list; each module's `COMMANDS` its commands. Nothing registers itself by
being imported."""

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
    session,
    sim,
    stats,
    tasks,
    webhooks,
)
from .base import Command, Reply, UsageError, assemble

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
)
COMMANDS, ALIASES = assemble(module.COMMANDS for module in MODULES)


def lookup(name: str) -> Command | None:
    return COMMANDS.get(ALIASES.get(name, name))


__all__ = ["ALIASES", "COMMANDS", "MODULES", "Command", "Reply", "UsageError", "lookup"]
