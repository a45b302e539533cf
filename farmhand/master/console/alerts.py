"""Console: sensor places and alert rules (the api's alerts.* and sensors.* methods)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from farmhand.tables import format_table, plural

from .base import Command, Reply, UsageError, collector, is_number

if TYPE_CHECKING:
    from farmhand.master.console.shell import ConsoleConnection

COMMANDS: list[Command] = []
command = collector(COMMANDS)

ALERTS_USAGE = (
    "alerts [add above|below SENSOR VALUE MINUTES | add silent TARGET MINUTES | delete ID]"
)
SENSORS_USAGE = "sensors [place SENSOR [tap=TAP] [fridge=FRIDGE]]"


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise UsageError(f"usage: {ALERTS_USAGE}") from None


@command(
    "alerts",
    ALERTS_USAGE,
    "alert rules and the raised alerts; add or delete a rule",
    methods=("alerts.list", "alerts.create", "alerts.delete"),
)
def alerts(console: ConsoleConnection, args: list[str]) -> Reply:
    if args[:1] == ["add"]:
        params: dict[str, Any]
        if len(args) == 5 and args[1] in ("above", "below"):
            params = {"kind": args[1], "target": args[2], "value": _number(args[3])}
            params["minutes"] = _number(args[4])
        elif len(args) == 4 and args[1] == "silent":
            params = {"kind": "silent", "target": args[2], "minutes": _number(args[3])}
        else:
            raise UsageError(f"usage: {ALERTS_USAGE}")
        result = console.call("alerts.create", params)
        return Reply(result, f"alert rule {result['id']}: {result['summary']}")
    if args[:1] == ["delete"] and len(args) == 2 and is_number(args[1]):
        result = console.call("alerts.delete", {"id": int(args[1])})
        return Reply(result, f"alert rule {result['id']} deleted")
    if args:
        raise UsageError(f"usage: {ALERTS_USAGE}")
    result = console.call("alerts.list", {})
    rows = [
        [
            r["id"],
            r["summary"],
            f"RAISED since {r['since']}" if r["alerting"] else "ok",
            "-" if r["last_value"] is None else f"{r['last_value']:g}",
        ]
        for r in result["rules"]
    ]
    table = format_table(["rule", "watches", "state", "last value"], rows)
    raised = len(result["active"])
    return Reply(
        result,
        f"{table}\n{plural(len(rows), 'rule')}, {raised} raised" if rows else "no alert rules",
    )


@command(
    "sensors",
    SENSORS_USAGE,
    "sensors with their place, latest value and raised alerts; or place one",
    methods=("sensors.list", "sensors.place"),
)
def sensors(console: ConsoleConnection, args: list[str]) -> Reply:
    if args[:1] == ["place"] and len(args) >= 2:
        params: dict[str, Any] = {"sensor": args[1]}
        for option in args[2:]:
            key, sep, value = option.partition("=")
            if not sep or key not in ("tap", "fridge") or not value:
                raise UsageError(f"usage: {SENSORS_USAGE}")
            params[key] = value
        result = console.call("sensors.place", params)
        where = [f"{key} {result[key]}" for key in ("tap", "fridge") if result[key]]
        return Reply(result, f"sensor {args[1]}: {', '.join(where) or 'no place'}")
    if args:
        raise UsageError(f"usage: {SENSORS_USAGE}")
    result = console.call("sensors.list", {})
    rows = []
    for s in result["sensors"]:
        latest = s["latest"]
        value = f"{latest['value']:g} {latest['unit']}".strip() if latest else "-"
        rows.append(
            [s["sensor"], s["tap"] or "-", s["fridge"] or "-", value, len(s["alerts"]) or "-"]
        )
    table = format_table(["sensor", "tap", "fridge", "latest", "alerts"], rows)
    return Reply(result, f"{table}\n{plural(len(rows), 'sensor')}" if rows else "no sensors")
