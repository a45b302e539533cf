"""JSON-RPC methods, one module per concern; importing this package registers them all."""

from . import (  # noqa: F401  (registration side effects)
    audit,
    clients,
    devices,
    jobs,
    keys,
    people,
    procs,
    session,
    sim,
    stats,
    tasks,
)
from .base import METHODS, Access, Method, method

__all__ = ["METHODS", "Access", "Method", "method"]
