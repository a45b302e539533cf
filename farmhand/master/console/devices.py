"""Console: readings, taps, kegs (the api's device methods)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from farmhand.tables import format_table, plural

from .base import Command, Reply, UsageError, collector, is_number

if TYPE_CHECKING:
    from farmhand.master.console.shell import ConsoleConnection

COMMANDS: list[Command] = []
command = collector(COMMANDS)

TAP_USAGE = (
    "taps [set TAP meter=AGENT.METER [output=AGENT.OUTPUT] [ticks_per_ml=2.724] "
    "[idle=10] [auth=AGENT,…]]"
)
KEGS_USAGE = "kegs [start TAP VOLUME_ML|SIZE BEVERAGE… [abv=N] [style=S] [ibu=N] [srm=N] | end TAP]"
KEG_OPTIONS: dict[str, Callable[[str], Any]] = {
    "abv": float,
    "style": str,
    "ibu": float,
    "srm": float,
}


@command(
    "readings",
    "readings [SENSOR] [LIMIT]",
    "the latest value of each sensor, or one sensor's recent readings",
    methods=("readings.query",),
)
def readings(console: ConsoleConnection, args: list[str]) -> Reply:
    if len(args) > 2 or (len(args) == 2 and not is_number(args[1])):
        raise UsageError("usage: readings [SENSOR] [LIMIT]")
    if not args:
        result = console.call("readings.query", {"limit": 1})
        rows = [
            [r["sensor"], r["kind"], f"{r['value']:g} {r['unit']}".strip(), r["agent"], r["time"]]
            for r in result["latest"]
        ]
        table = format_table(["sensor", "kind", "latest", "agent", "at"], rows)
        return Reply(
            result, f"{table}\n{plural(len(rows), 'sensor')}" if rows else "no readings yet"
        )
    limit = int(args[1]) if len(args) == 2 else 20
    result = console.call("readings.query", {"sensor": args[0], "limit": limit})
    rows = [[r["time"], f"{r['value']:g} {r['unit']}".strip()] for r in result["readings"]]
    return Reply(
        result, format_table(["time", "value"], rows) if rows else f"no readings of {args[0]!r}"
    )


TAP_OPTIONS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "meter": ("meter", str),
    "output": ("output", str),
    "ticks_per_ml": ("ticks_per_ml", float),
    "idle": ("idle_s", float),
    "auth": ("auth_agents", lambda v: [a for a in v.split(",") if a]),
}


@command(
    "taps",
    TAP_USAGE,
    "taps with their keg, valve and live flow; or configure one",
    methods=("taps.list", "taps.configure"),
)
def taps(console: ConsoleConnection, args: list[str]) -> Reply:
    if args[:1] == ["set"] and len(args) >= 2:
        params: dict[str, Any] = {"tap": args[1]}
        for option in args[2:]:
            key, sep, value = option.partition("=")
            if not sep or key not in TAP_OPTIONS:
                raise UsageError(f"usage: {TAP_USAGE}")
            name, convert = TAP_OPTIONS[key]
            try:
                params[name] = convert(value)
            except ValueError:
                raise UsageError(f"bad value for {key}: {value!r}") from None
        result = console.call("taps.configure", params)
        return Reply(
            result,
            f"tap {result['name']}: meter {result['meter']}, valve {result['output'] or 'none'}",
        )
    if args:
        raise UsageError(f"usage: {TAP_USAGE}")
    result = console.call("taps.list", {})
    rows = []
    for tap in result["taps"]:
        keg, flow = tap["keg"], tap["flow"]
        rows.append(
            [
                tap["name"],
                tap["meter"],
                keg["beverage"] if keg else "-",
                f"{keg['remaining_ml']:.0f} ml" if keg else "-",
                "open" if tap["valve_open"] else "closed",
                tap["user"] or "-",
                f"{flow['volume_ml']:.0f} ml" if flow else "-",
            ]
        )
    table = format_table(
        ["tap", "meter", "beverage", "remaining", "valve", "user", "pouring"], rows
    )
    return Reply(result, f"{table}\n{plural(len(rows), 'tap')}" if rows else "no taps")


@command(
    "kegs",
    KEGS_USAGE,
    "kegs on tap and finished; start or end one",
    methods=("kegs.list", "kegs.start", "kegs.end"),
)
def kegs(console: ConsoleConnection, args: list[str]) -> Reply:
    if args[:1] == ["start"] and len(args) >= 4:
        params: dict[str, Any] = {"tap": args[1]}
        if is_number(args[2]):
            params["volume_ml"] = float(args[2])
        else:
            params["size"] = args[2]  # corny, half, 19.5L, … (the method checks it)
        words = []
        for word in args[3:]:
            key, sep, value = word.partition("=")
            if sep and key in KEG_OPTIONS:
                try:
                    params[key] = KEG_OPTIONS[key](value)
                except ValueError:
                    raise UsageError(f"bad value for {key}: {value!r}") from None
            else:
                words.append(word)
        if not words:
            raise UsageError(f"usage: {KEGS_USAGE}")
        result = console.call("kegs.start", {**params, "beverage": " ".join(words)})
        return Reply(
            result,
            f"keg {result['id']} ({result['beverage']}, {result['volume_ml']:g} ml) "
            f"on tap {args[1]}",
        )
    if args[:1] == ["end"] and len(args) == 2:
        result = console.call("kegs.end", {"tap": args[1]})
        return Reply(result, f"keg {result['id']} ended with {result['remaining_ml']:.0f} ml left")
    if args:
        raise UsageError(f"usage: {KEGS_USAGE}")
    result = console.call("kegs.list", {})
    rows = [
        [
            k["id"],
            k["tap"],
            k["beverage"],
            k["style"] or "-",
            "-" if k["abv"] is None else f"{k['abv']:g}%",
            f"{k['volume_ml']:.0f}",
            f"{k['remaining_ml']:.0f}",
            "on tap" if k["ended"] is None else k["ended"],
        ]
        for k in result["kegs"]
    ]
    table = format_table(
        ["keg", "tap", "beverage", "style", "abv", "volume ml", "remaining ml", "ended"], rows
    )
    return Reply(result, f"{table}\n{plural(len(rows), 'keg')}" if rows else "no kegs")
