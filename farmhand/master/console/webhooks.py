"""Console: webhooks [list | create URL EVENT[,EVENT…] [secret=S] | delete ID]."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from farmhand.tables import webhooks_text

from .base import Command, Reply, UsageError, collector, is_number

if TYPE_CHECKING:
    from farmhand.master.console.shell import ConsoleConnection

COMMANDS: list[Command] = []
command = collector(COMMANDS)

USAGE = "webhooks [list] | webhooks create URL EVENT[,EVENT…] [secret=S] | webhooks delete ID"


@command(
    "webhooks",
    USAGE,
    "list, create or delete webhooks (signed JSON POSTs of farm events)",
    methods=("webhooks.list", "webhooks.create", "webhooks.delete"),
)
def webhooks(console: ConsoleConnection, args: list[str]) -> Reply:
    action, rest = (args[0], args[1:]) if args else ("list", [])
    if action == "list" and not rest:
        result = console.call("webhooks.list", {})
        return Reply(result, webhooks_text(result["webhooks"]))
    if action == "create" and len(rest) in (2, 3):
        params: dict[str, Any] = {
            "url": rest[0],
            "events": [event for event in rest[1].split(",") if event],
        }
        if len(rest) == 3:
            option, sep, value = rest[2].partition("=")
            if option != "secret" or not sep:
                raise UsageError(f"usage: {USAGE}")
            params["secret"] = value
        result = console.call("webhooks.create", params)
        signed = " (signed)" if result["has_secret"] else ""
        text = f"created webhook {result['id']}: {result['url']} for {', '.join(result['events'])}"
        return Reply(result, text + signed)
    if action == "delete" and len(rest) == 1:
        if not is_number(rest[0]):
            raise UsageError(f"webhooks delete ID: {rest[0]!r} is not a webhook id")
        result = console.call("webhooks.delete", {"id": int(rest[0])})
        return Reply(result, f"deleted webhook {rest[0]}")
    raise UsageError(f"usage: {USAGE}")
