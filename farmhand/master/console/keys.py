"""Console: keys [list | create ROLE [NAME] [label=TEXT] [scope=read|admin] | revoke KEY_ID]."""

from __future__ import annotations

from typing import TYPE_CHECKING

from farmhand.tables import format_table, plural

from .base import Command, Reply, UsageError, collector

if TYPE_CHECKING:
    from farmhand.master.console.shell import ConsoleConnection

COMMANDS: list[Command] = []
command = collector(COMMANDS)

USAGE = "keys [list] | keys create ROLE [NAME] [label=TEXT] [scope=read|admin] | keys revoke KEY_ID"
CREATE_OPTIONS = ("label", "scope")


@command(
    "keys",
    USAGE,
    "list, create or revoke agent and API keys",
    methods=("keys.list", "keys.create", "keys.revoke"),
)
def keys(console: ConsoleConnection, args: list[str]) -> Reply:
    action, rest = (args[0], args[1:]) if args else ("list", [])
    if action == "list" and not rest:
        result = console.call("keys.list", {})
        rows = result["keys"]
        table = format_table(
            ["key id", "role", "name", "scope", "label", "created", "revoked"],
            [
                [
                    r["key_id"],
                    r["role"],
                    r["name"] or "-",
                    r["scope"] or "-",
                    r["label"] or "-",
                    r["created"],
                    "REVOKED" if r["revoked"] else "-",
                ]
                for r in rows
            ],
        )
        return Reply(result, f"{table}\n{plural(len(rows), 'key')}" if rows else "no keys")
    if action == "create" and rest:
        result = console.call("keys.create", _create_params(rest))
        text = (
            f"created key {result['key_id']} for role {result['role']}:\n  {result['key']}\n"
            "It is shown only this once: store it now."
        )
        return Reply(result, text)
    if action == "revoke" and len(rest) == 1:
        result = console.call("keys.revoke", {"key_id": rest[0]})
        return Reply(result, f"revoked key {result['key_id']}")
    raise UsageError(f"usage: {USAGE}")


def _create_params(words: list[str]) -> dict[str, str]:
    """ROLE [NAME] [label=TEXT] [scope=S] → keys.create params."""
    params = {"role": words[0]}
    for word in words[1:]:
        option, sep, value = word.partition("=")
        if sep and option in CREATE_OPTIONS:
            params[option] = value
        elif "name" not in params:
            params["name"] = word
        else:
            raise UsageError(f"usage: {USAGE}")
    return params
