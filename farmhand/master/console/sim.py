"""Console: sim — drive a simulated device (`hwagent.py --device sim://`): pour at a tap, swipe a
card, set a fridge's temperature. The demo's way to pour without hardware."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from .base import Command, Reply, UsageError, collector

if TYPE_CHECKING:
    from farmhand.master.console.shell import ConsoleConnection

COMMANDS: list[Command] = []
command = collector(COMMANDS)

SIM_USAGE = (
    "sim pour TAP ML [SECONDS] | sim swipe AGENT TOKEN [READER] | sim temp AGENT SENSOR CELSIUS"
)


@command(
    "sim",
    SIM_USAGE,
    "simulated devices: pour at a tap, swipe a card, set a temperature",
    methods=("sim.pour", "sim.swipe", "sim.temperature"),
)
def sim(console: ConsoleConnection, args: list[str]) -> Reply:
    what, rest = (args[0], args[1:]) if args else ("", [])
    if what == "pour" and len(rest) in (2, 3) and all(_is_number(a) for a in rest[1:]):
        params: dict[str, Any] = {"tap": rest[0], "ml": float(rest[1])}
        if len(rest) == 3:
            params["seconds"] = float(rest[2])
        result = console.call("sim.pour", params)
        return Reply(
            result,
            f"pouring {rest[1]} ml at {result['tap']} ({result['ticks']} ticks on "
            f"{result['agent']}.{result['meter']} over {result['seconds']:g} s)",
        )
    if what == "swipe" and len(rest) in (2, 3):
        params = {"agent": rest[0], "token": rest[1]}
        if len(rest) == 3:
            params["reader"] = rest[2]
        result = console.call("sim.swipe", params)
        return Reply(result, f"token {result['token']} presented at {result['agent']}")
    if what == "temp" and len(rest) == 3 and _is_number(rest[2]):
        params = {"agent": rest[0], "sensor": rest[1], "celsius": float(rest[2])}
        result = console.call("sim.temperature", params)
        return Reply(result, f"{result['sensor']} on {result['agent']} now reads {rest[2]} °C")
    raise UsageError(f"usage: {SIM_USAGE}")


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False
