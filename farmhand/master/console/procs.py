"""Console: procs — the processes node.py supervises across the farm; start, stop, restart one,
or make a node reload its agents.toml."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from farmhand.tables import format_duration, format_table, plural

from .base import Command, Reply, UsageError, collector

if TYPE_CHECKING:
    from farmhand.master.console.shell import ConsoleConnection

COMMANDS: list[Command] = []
command = collector(COMMANDS)

PROCS_USAGE = "procs [NODE] | procs start|stop|restart AGENT [NODE] | procs reload NODE"
ORDERS = ("start", "stop", "restart")


@command(
    "procs",
    PROCS_USAGE,
    "processes supervised by node.py; start/stop/restart one",
    methods=("procs.list", "procs.start", "procs.stop", "procs.restart", "procs.reload"),
)
def procs(console: ConsoleConnection, args: list[str]) -> Reply:
    if args[:1] and args[0] in ORDERS:
        if len(args) not in (2, 3):
            raise UsageError(f"usage: {PROCS_USAGE}")
        params: dict[str, Any] = {"agent": args[1]}
        if len(args) == 3:
            params["node"] = args[2]
        result = console.call(f"procs.{args[0]}", params)
        pid = f", pid {result['pid']}" if result.get("pid") else ""
        return Reply(result, f"{result['agent']} on {result['node']}: {result['state']}{pid}")
    if args[:1] == ["reload"]:
        if len(args) != 2:
            raise UsageError("usage: procs reload NODE")
        result = console.call("procs.reload", {"node": args[1]})
        changes = "; ".join(
            f"{key} {', '.join(result[key])}"
            for key in ("added", "removed", "changed")
            if result.get(key)
        )
        return Reply(result, f"{result['node']} reloaded: {changes or 'nothing changed'}")
    if len(args) > 1:
        raise UsageError(f"usage: {PROCS_USAGE}")
    result = console.call("procs.list", {"node": args[0]} if args else {})
    rows = [
        [
            row["node"],
            row["agent"],
            row["state"] + (" (stale)" if row["stale"] else ""),
            row["pid"] or "-",
            "-" if row["uptime_s"] is None else format_duration(row["uptime_s"]),
            row["restarts"],
            "-" if row["last_exit"] is None else row["last_exit"],
        ]
        for row in result["procs"]
    ]
    if not rows:
        return Reply(result, "no supervised processes (no node.py has reported)")
    table = format_table(["node", "agent", "state", "pid", "uptime", "restarts", "last exit"], rows)
    running = sum(1 for row in result["procs"] if row["state"] == "running")
    nodes = {row["node"] for row in result["procs"]}
    processes = f"{len(rows)} process{'' if len(rows) == 1 else 'es'}"
    summary = f"{processes} on {plural(len(nodes), 'node')} ({running} running)"
    return Reply(result, f"{table}\n{summary}")
