"""JSON-RPC methods, one module per concern; importing this package registers them all."""

from . import clients, devices, jobs, keys, people, procs, session, tasks  # noqa: F401  (registration side effects)
from .base import METHODS, Access, Method, method

__all__ = ["METHODS", "Access", "Method", "method"]
