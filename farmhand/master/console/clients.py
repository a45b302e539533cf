"""Console: clients, inspect, enable, disable, stop, restart, schedule, forget, prune."""

from __future__ import annotations

from typing import TYPE_CHECKING

from farmhand.tables import clients_text, format_duration, parse_duration, plural
from farmhand.workertext import client_text, prune_text, schedule_text, stop_text
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


@command(
    "inspect",
    "inspect NAME",
    "one client: status, schedule, host facts (CPUs, memory, load), recent tasks, blocklists",
    methods=("clients.get",),
)
def inspect(console: ConsoleConnection, args: list[str]) -> Reply:
    if len(args) != 1:
        raise UsageError("usage: inspect NAME")
    result = console.call("clients.get", {"name": args[0]})
    return Reply(result, client_text(result, lambda stamp: _ago(stamp, console.now())))


def _split_when(args: list[str], verb: str) -> tuple[list[str], str]:
    usage = f"usage: {verb} SELECTOR [--when now|idle]  (for example: {verb} render-0* --when idle)"
    words, when = list(args), "idle"
    if "--when" in words:
        at = words.index("--when")
        if at + 1 >= len(words) or words[at + 1] not in ("now", "idle"):
            raise UsageError(usage)
        when = words[at + 1]
        del words[at : at + 2]
    if not words:
        raise UsageError(usage)
    return words, when


def _stop(console: ConsoleConnection, args: list[str], verb: str) -> Reply:
    words, when = _split_when(args, verb)
    selector = " ".join(words)
    result = console.call(f"clients.{verb}", {"select": selector, "when": when})
    return Reply(result, stop_text(verb, selector, result))


@command(
    "stop",
    "stop SELECTOR [--when now|idle]",
    "stop workers: no new tasks; `idle` (default) lets running tasks finish, `now` kills and "
    "requeues them; a node leaves a stopped worker stopped",
    methods=("clients.stop",),
)
def stop(console: ConsoleConnection, args: list[str]) -> Reply:
    return _stop(console, args, "stop")


@command(
    "restart",
    "restart SELECTOR [--when now|idle]",
    "restart workers under node.py (their node starts them again); `idle` (default) or `now`",
    methods=("clients.restart",),
)
def restart(console: ConsoleConnection, args: list[str]) -> Reply:
    return _stop(console, args, "restart")


@command(
    "schedule",
    "schedule SELECTOR --set WINDOWS | --clear",
    "sleep schedule: no new tasks inside weekly windows in the master's local time, e.g. "
    "schedule desk-* --set 'mon-fri 09:00-19:00, 22:00-06:00'",
    methods=("clients.schedule",),
)
def schedule(console: ConsoleConnection, args: list[str]) -> Reply:
    usage = "usage: schedule SELECTOR --set 'mon-fri 09:00-19:00' | schedule SELECTOR --clear"
    words = list(args)
    windows: str | None
    if "--clear" in words:
        words.remove("--clear")
        windows = None
    elif "--set" in words:
        at = words.index("--set")
        windows = " ".join(words[at + 1 :])
        del words[at:]
        if not windows:
            raise UsageError(usage)
    else:
        raise UsageError(usage)
    if not words:
        raise UsageError(usage)
    selector = " ".join(words)
    result = console.call("clients.schedule", {"select": selector, "schedule": windows})
    return Reply(result, schedule_text(selector, result))


@command(
    "prune",
    "prune [--offline-for DURATION]",
    "forget every client offline longer than DURATION (e.g. 7d, 12h; default: the master's "
    "prune_offline_s); online clients stay",
    methods=("clients.prune",),
)
def prune(console: ConsoleConnection, args: list[str]) -> Reply:
    params: dict[str, float] = {}
    if args:
        if len(args) != 2 or args[0] != "--offline-for":
            raise UsageError(
                "usage: prune [--offline-for DURATION]  (for example: prune --offline-for 7d)"
            )
        try:
            params["offline_for_s"] = parse_duration(args[1])
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    result = console.call("clients.prune", params)
    return Reply(result, prune_text(result))
