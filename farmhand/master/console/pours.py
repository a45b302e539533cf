"""Console: pour corrections (the api's pours.cancel and pours.update)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import Command, Reply, UsageError, collector, is_number

if TYPE_CHECKING:
    from farmhand.master.console.shell import ConsoleConnection

COMMANDS: list[Command] = []
command = collector(COMMANDS)

CORRECT_USAGE = "correct POUR cancel | correct POUR [user=NAME|guest] [ml=VOLUME] [spill=yes|no]"
_YES_NO = {"yes": True, "no": False}


@command(
    "correct",
    CORRECT_USAGE,
    "cancel a pour (back into the keg), or reassign, resize or mark it as a spill",
    methods=("pours.cancel", "pours.update"),
)
def correct(console: ConsoleConnection, args: list[str]) -> Reply:
    if len(args) < 2 or not is_number(args[0]):
        raise UsageError(f"usage: {CORRECT_USAGE}")
    pour_id = int(args[0])
    if args[1:] == ["cancel"]:
        result = console.call("pours.cancel", {"id": pour_id})
        return Reply(result, f"pour {pour_id} canceled: {result['volume_ml']:g} ml back in the keg")
    params: dict[str, Any] = {"id": pour_id}
    for option in args[1:]:
        key, sep, value = option.partition("=")
        if not sep:
            raise UsageError(f"usage: {CORRECT_USAGE}")
        if key == "user":
            params["username"] = value
        elif key == "ml":
            try:
                params["volume_ml"] = float(value)
            except ValueError:
                raise UsageError(f"bad value for ml: {value!r}") from None
        elif key == "spill" and value in _YES_NO:
            params["spill"] = _YES_NO[value]
        else:
            raise UsageError(f"usage: {CORRECT_USAGE}")
    result = console.call("pours.update", params)
    who = "a spill" if result["spill"] else (result["username"] or "guest")
    return Reply(result, f"pour {pour_id}: {result['volume_ml']:g} ml, {who}")
