"""Console: clients, enable, disable, forget."""

from __future__ import annotations

from typing import TYPE_CHECKING

from farmhand.tables import clients_text, format_duration, plural
from protocol.times import parse_iso_utc

from .base import Command, Reply, UsageError, collector

if TYPE_CHECKING:
    from farmhand.master.console.shell import ConsoleConnection

COMMANDS: list[Command] = []
command = collector(COMMANDS)


@command(
    "clients",
    "clients [SELECTOR]",
    "list clients; SELECTOR like `online role=worker render-0*` (default all)",
    methods=("clients.list",),
)
def clients(console: ConsoleConnection, args: list[str]) -> Reply:
    result = console.call("clients.list", {"select": " ".join(args) or "all"})
    now = console.now()
    return Reply(result, clients_text(result["clients"], lambda stamp: _ago(stamp, now)))


def _ago(stamp: str | None, now: float) -> str:
    if stamp is None:
        return "never"
    return f"{format_duration(now - parse_iso_utc(stamp))} ago"


def _set_enabled(console: ConsoleConnection, args: list[str], enable: bool) -> Reply:
    verb = "enable" if enable else "disable"
    if not args:
        raise UsageError(f"usage: {verb} SELECTOR  (for example: {verb} render-0*)")
    selector = " ".join(args)
    result = console.call(f"clients.{verb}", {"select": selector})
    matched, changed = result["matched"], result["changed"]
    if not matched:
        return Reply(result, f"no client matches {selector!r}: nothing {verb}d")
    lines = []
    if changed:
        lines.append(f"{verb}d {plural(len(changed), 'client')}: {', '.join(changed)}")
    unchanged = [name for name in matched if name not in changed]
    if unchanged:
        lines.append(f"already {verb}d: {', '.join(unchanged)}")
    return Reply(result, "\n".join(lines))


@command(
    "enable",
    "enable SELECTOR",
    "enable clients: workers get new tasks again",
    methods=("clients.enable",),
)
def enable(console: ConsoleConnection, args: list[str]) -> Reply:
    return _set_enabled(console, args, True)


@command(
    "disable",
    "disable SELECTOR",
    "disable clients: no new tasks for them; running work finishes",
    methods=("clients.disable",),
)
def disable(console: ConsoleConnection, args: list[str]) -> Reply:
    return _set_enabled(console, args, False)


@command(
    "forget",
    "forget NAME",
    "remove an offline client from the master and its database",
    methods=("clients.forget",),
)
def forget(console: ConsoleConnection, args: list[str]) -> Reply:
    if len(args) != 1:
        raise UsageError("usage: forget NAME")
    result = console.call("clients.forget", {"name": args[0]})
    return Reply(result, f"forgot {args[0]}")
