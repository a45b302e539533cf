"""Console: help, status, login, ping, quit."""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Any

from farmhand.tables import format_duration, format_table

from .base import Command, Reply, UsageError, collector, no_args

if TYPE_CHECKING:
    from farmhand.master.console.shell import ConsoleConnection

COMMANDS: list[Command] = []
command = collector(COMMANDS)


# Longer words are no typo of a command name, and difflib's cost grows with their length.
SUGGEST_MAX_CHARS = 40


def suggest(name: str) -> str:
    """ " — did you mean 'clients'?" for a near miss, else ""."""
    from . import ALIASES, COMMANDS  # the assembled table, which includes this module

    if len(name) > SUGGEST_MAX_CHARS:
        return ""
    close = difflib.get_close_matches(name, [*COMMANDS, *ALIASES], n=1, cutoff=0.5)
    return f" — did you mean '{close[0]}'?" if close else ""


@command("help", "help [COMMAND]", "list commands, or show how to use one")
def help_(console: ConsoleConnection, args: list[str]) -> Reply:
    from . import COMMANDS, lookup  # the assembled table, which includes this module

    if len(args) > 1:
        raise UsageError("usage: help [COMMAND]")
    if args:
        found = lookup(args[0])
        if found is None:
            raise UsageError(f"no command {args[0]!r}{suggest(args[0])} (type 'help' for the list)")
        return _command_help(found)
    rows = [
        [entry.name, entry.summary] for entry in sorted(COMMANDS.values(), key=lambda c: c.name)
    ]
    text = (
        format_table(["command", "what it does"], rows)
        + "\nAdd --json to any command for its raw result; `help COMMAND` for its usage and params."
    )
    return Reply({"commands": sorted(COMMANDS)}, text)


def _command_help(found: Command) -> Reply:
    """Its usage and summary, then each API method it calls: its summary and params, read from
    the method table (the same entries rpc.discover and docs/api.md describe)."""
    from ..api import METHODS

    lines = [f"usage: {found.usage}", f"  {found.summary}", *(f"  {n}" for n in found.notes)]
    methods = []
    for name in found.methods:
        entry = METHODS[name]
        lines.append(f"calls {name}: {entry.summary}")
        lines.extend(f"    {param.describe()}" for param in entry.params)
        methods.append(
            {
                "name": name,
                "summary": entry.summary,
                "params": [
                    {"name": param.name, "required": param.required, "schema": param.schema()}
                    for param in entry.params
                ],
            }
        )
    result = {
        "command": found.name,
        "usage": found.usage,
        "summary": found.summary,
        "methods": methods,
    }
    return Reply(result, "\n".join(lines))


@command(
    "status", "status", "the master: version, uptime, database, clients online", methods=("status",)
)
def status(console: ConsoleConnection, args: list[str]) -> Reply:
    no_args("status", args)
    result = console.call("status", {})
    clients = result["clients"]
    by_role = ", ".join(
        f"{role} {counts['online']}/{counts['total']}"
        for role, counts in clients["by_role"].items()
    )
    text = "\n".join(
        [
            f"farmhand master {result['version']} on {result['listen']}, "
            f"up {format_duration(result['uptime_s'])} (since {result['started']})",
            database_line(result["database"]),
            role_line(result["master"]),
            f"clients:     {clients['online']}/{clients['total']} online ({by_role})",
            f"connections: {result['connections']['rpc']} rpc, "
            f"{result['connections']['console']} console",
            *([f"tls:         tls://{result['listen_tls']}"] if result.get("listen_tls") else []),
            *([mqtt_line(result["mqtt"])] if result.get("mqtt") else []),
            *(f"WARNING:     {warning}" for warning in result.get("warnings", [])),
        ]
    )
    return Reply(result, text)


def mqtt_line(mqtt: dict[str, Any]) -> str:
    """The MQTT bridge (with --mqtt): connected or not, reconnects, events waiting or dropped."""
    state = "connected" if mqtt["mqtt_connected"] else "NOT connected"
    return (
        f"mqtt:        {mqtt['broker']} {state}, {mqtt['mqtt_connects']} connects, "
        f"{mqtt['mqtt_events_queued']} events queued, {mqtt['mqtt_events_dropped']} dropped"
    )


def role_line(master: dict[str, Any]) -> str:
    """Whether this master is the active one, who holds the lease, since when."""
    if not master["standby_capable"]:
        return "role:        active (the only master: SQLite)"
    return (
        f"role:        {master['role']}, lease generation {master['generation']} held by "
        f"{master['holder']}, taken over {master['last_takeover']}"
    )


def database_line(database: dict[str, Any]) -> str:
    """One line on the database: quiet when it is fine, loud when it is down."""
    pending = database["pending_writes"]
    if database["healthy"]:
        extra = f", {database['reconnects']} reconnects" if database["reconnects"] else ""
        waiting = f", {pending} writes pending" if pending else ""
        return f"database:    {database['url']} ok{extra}{waiting}"
    return (
        f"database:    DOWN — {database['url']} unavailable for "
        f"{format_duration(database['down_s'])} (since {database['since']}): "
        f"{database['last_error']}; {pending} writes waiting in memory, operator writes refused"
    )


@command(
    "login",
    "login KEY",
    "authenticate a remote console with an api key",
    open=True,
    methods=("hello",),
)
def login(console: ConsoleConnection, args: list[str]) -> Reply:
    if len(args) != 1:
        raise UsageError("usage: login KEY")
    result = console.call("hello", {"role": "api", "key": args[0]})
    return Reply(result, "logged in")


@command("ping", "ping", "check that the master answers", methods=("ping",))
def ping(console: ConsoleConnection, args: list[str]) -> Reply:
    no_args("ping", args)
    result = console.call("ping", {})
    return Reply(result, str(result))


@command(
    "quit", "quit", "end this console session (also exit, Ctrl-D)", aliases=("exit",), open=True
)
def quit_(console: ConsoleConnection, args: list[str]) -> Reply:
    console.end_after_reply = True
    return Reply({}, "bye")
