"""Console: audit [N], the newest state-changing calls (audit.list)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

from farmhand.tables import format_table

from .base import Command, Reply, UsageError, collector, is_number

if TYPE_CHECKING:
    from farmhand.master.console.shell import ConsoleConnection

COMMANDS: list[Command] = []
command = collector(COMMANDS)

USAGE = "audit [N]"
DEFAULT_ROWS = 20
PARAMS_CHARS = 60


def _short(params: object) -> str:
    text = orjson.dumps(params).decode()
    return text if len(text) <= PARAMS_CHARS else text[: PARAMS_CHARS - 1] + "…"


@command(
    "audit",
    USAGE,
    "the newest state-changing calls: who, from where, what",
    methods=("audit.list",),
)
def audit(console: ConsoleConnection, args: list[str]) -> Reply:
    if len(args) > 1 or (args and not is_number(args[0])):
        raise UsageError(f"usage: {USAGE}")
    limit = int(args[0]) if args else DEFAULT_ROWS
    result = console.call("audit.list", {"limit": limit})
    rows = [
        [
            entry["time"],
            entry["who"],
            entry["peer"],
            entry["method"],
            _short(entry["params"]),
            "ok" if entry["error"] is None else f"error {entry['error']['code']}",
        ]
        for entry in result["entries"]
    ]
    if not rows:
        return Reply(result, "no audit entries")
    table = format_table(["time", "who", "peer", "method", "params", "result"], rows)
    count = "1 entry" if len(rows) == 1 else f"{len(rows)} entries"
    return Reply(result, f"{table}\n{count}")
