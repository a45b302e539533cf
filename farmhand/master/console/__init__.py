"""Console commands, one module per concern; importing this package registers them all."""

from . import (  # noqa: F401  (registration side effects)
    audit,
    clients,
    devices,
    jobs,
    keys,
    procs,
    session,
    sim,
    stats,
)
from .base import ALIASES, COMMANDS, Command, Reply, UsageError, lookup

__all__ = ["ALIASES", "COMMANDS", "Command", "Reply", "UsageError", "lookup"]
