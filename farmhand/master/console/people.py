"""Console: users, tokens, presence, pours (the api's people methods)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from farmhand.tables import format_table, plural

from .base import Command, Reply, UsageError, collector, is_number

if TYPE_CHECKING:
    from farmhand.master.console.shell import ConsoleConnection

COMMANDS: list[Command] = []
command = collector(COMMANDS)

USERS_USAGE = "users [add USERNAME [DISPLAY NAME…]]"
TOKENS_USAGE = "tokens [assign READER TOKEN USERNAME | revoke READER TOKEN]"


@command("users", USERS_USAGE, "list users, or add one", methods=("users.list", "users.create"))
def users(console: ConsoleConnection, args: list[str]) -> Reply:
    if args[:1] == ["add"] and len(args) >= 2:
        result = console.call(
            "users.create", {"username": args[1], "display_name": " ".join(args[2:])}
        )
        return Reply(result, f"created user {result['username']}")
    if args:
        raise UsageError(f"usage: {USERS_USAGE}")
    result = console.call("users.list", {})
    rows = [
        [
            u["username"],
            u["display_name"],
            "yes" if u["admin"] else "-",
            "yes" if u["enabled"] else "NO",
            u["created"],
        ]
        for u in result["users"]
    ]
    table = format_table(["username", "name", "admin", "enabled", "created"], rows)
    return Reply(result, f"{table}\n{plural(len(rows), 'user')}" if rows else "no users")


@command(
    "tokens",
    TOKENS_USAGE,
    "list tokens (and unknown ones seen), assign or revoke",
    methods=("tokens.list", "tokens.assign", "tokens.revoke"),
)
def tokens(console: ConsoleConnection, args: list[str]) -> Reply:
    if args[:1] == ["assign"] and len(args) == 4:
        result = console.call(
            "tokens.assign", {"reader": args[1], "token": args[2], "username": args[3]}
        )
        return Reply(
            result,
            f"token {result['token']} at {result['reader']} now belongs to {result['username']}",
        )
    if args[:1] == ["revoke"] and len(args) == 3:
        result = console.call("tokens.revoke", {"reader": args[1], "token": args[2]})
        return Reply(result, f"token {args[2]} at {args[1]} revoked")
    if args:
        raise UsageError(f"usage: {TOKENS_USAGE}")
    result = console.call("tokens.list", {})
    rows = [[t["reader"], t["token"], t["username"], t["created"]] for t in result["tokens"]]
    text = (
        format_table(["reader", "token", "user", "assigned"], rows)
        if rows
        else "no tokens assigned"
    )
    if result["unknown"]:
        unknown = [
            [u["reader"], u["token"], u["agent"], u["count"], u["last_seen"]]
            for u in result["unknown"]
        ]
        text += "\nunknown tokens seen (assign with: tokens assign READER TOKEN USER):\n"
        text += format_table(["reader", "token", "agent", "times", "last seen"], unknown)
    return Reply(result, text)


@command(
    "pours", "pours [TAP|USERNAME] [LIMIT]", "recent pours, newest first", methods=("pours.list",)
)
def pours(console: ConsoleConnection, args: list[str]) -> Reply:
    params: dict[str, Any] = {"limit": 20}
    for arg in args:
        if is_number(arg):
            params["limit"] = int(arg)
        elif arg in console.services.devices.taps.taps:
            params["tap"] = arg
        else:
            params["username"] = arg
    result = console.call("pours.list", params)
    rows = [
        [
            p["id"],
            p["tap"],
            p["username"] or "guest",
            f"{p['volume_ml']:.0f} ml",
            p["ticks"],
            p["end"],
        ]
        for p in result["pours"]
    ]
    table = format_table(["pour", "tap", "who", "volume", "ticks", "ended"], rows)
    return Reply(result, f"{table}\n{plural(len(rows), 'pour')}" if rows else "no pours")


@command("presence", "presence", "who is present at which reader", methods=("presence.list",))
def presence(console: ConsoleConnection, args: list[str]) -> Reply:
    if args:
        raise UsageError("usage: presence")
    result = console.call("presence.list", {})
    rows = [
        [p["agent"], p["reader"], p["username"], p["token"], p["since"]] for p in result["presence"]
    ]
    return Reply(
        result,
        format_table(["agent", "reader", "user", "token", "since"], rows)
        if rows
        else "nobody is present",
    )
