"""Console: sessions and stats — Kegbot Server's drinking sessions and totals."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from farmhand.tables import format_table, plural

from .base import Command, Reply, UsageError, collector, is_number

if TYPE_CHECKING:
    from farmhand.master.console.shell import ConsoleConnection

COMMANDS: list[Command] = []
command = collector(COMMANDS)

STATS_USAGE = "stats [keg=ID | user=NAME | session=ID]"


@command(
    "sessions",
    "sessions [LIMIT]",
    "drinking sessions: pours less than 90 min apart",
    methods=("sessions.list",),
)
def sessions(console: ConsoleConnection, args: list[str]) -> Reply:
    if len(args) > 1 or (args and not is_number(args[0])):
        raise UsageError("usage: sessions [LIMIT]")
    result = console.call("sessions.list", {"limit": int(args[0])} if args else {})
    rows = [
        [
            s["id"],
            s["start"],
            s["end"],
            f"{s['volume_ml']:g} ml",
            s["pours"],
            ", ".join(s["drinkers"]),
        ]
        for s in result["sessions"]
    ]
    if not rows:
        return Reply(result, "no drinking sessions yet")
    table = format_table(["id", "start", "end", "volume", "pours", "drinkers"], rows)
    return Reply(result, f"{table}\n{plural(len(rows), 'session')}")


@command(
    "stats",
    STATS_USAGE,
    "pour totals of the system, a keg, a user or a session",
    methods=("stats.get",),
)
def stats(console: ConsoleConnection, args: list[str]) -> Reply:
    params: dict[str, Any] = {}
    for arg in args:
        key, _, value = arg.partition("=")
        if key == "keg" and is_number(value):
            params["keg"] = int(value)
        elif key == "user" and value:
            params["username"] = value
        elif key == "session" and is_number(value):
            params["session"] = int(value)
        else:
            raise UsageError(f"usage: {STATS_USAGE}")
    result = console.call("stats.get", params)
    drinkers = ", ".join(f"{k} {v:g} ml" for k, v in result["volume_by_drinker"].items()) or "-"
    weekdays = " ".join(f"{k} {v:g}" for k, v in result["volume_by_weekday"].items())
    text = (
        f"{result['total_volume_ml']:g} ml in {plural(result['total_pours'], 'pour')}, "
        f"{plural(result['sessions'], 'session')}; largest pour {result['largest_pour_ml']:g} ml\n"
        f"by drinker: {drinkers}\nby weekday (ml): {weekdays}"
    )
    return Reply(result, text)
