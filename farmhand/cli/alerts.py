"""`farmhand alerts [add KIND TARGET [VALUE] --minutes N | delete ID]`: the alert rules (a
sensor above or below a value, or a sensor, agent or device not heard from, for N minutes)."""

from __future__ import annotations

import argparse
from typing import Any

from farmhand.tables import format_table, plural

from .base import EXIT_OK, Command, Context, UsageError

KINDS = ("above", "below", "silent")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", nargs="?", choices=("list", "add", "delete"), default="list")
    parser.add_argument(
        "words", nargs="*", metavar="ARG", help="add: KIND TARGET [VALUE]; delete: ID"
    )
    parser.add_argument("--minutes", type=float, default=5.0, help="add: for how long (5)")


def run(ctx: Context, args: argparse.Namespace) -> int:
    client = ctx.client
    if args.action == "add":
        words = args.words
        if (
            len(words) < 2
            or words[0] not in KINDS
            or len(words) != (2 if words[0] == "silent" else 3)
        ):
            raise UsageError("alerts add above|below SENSOR VALUE, or alerts add silent TARGET")
        params: dict[str, Any] = {"kind": words[0], "target": words[1], "minutes": args.minutes}
        if words[0] != "silent":
            try:
                params["value"] = float(words[2])
            except ValueError:
                raise UsageError(f"the value must be a number, not {words[2]!r}") from None
        rule = client.request("alerts.create", params)
        ctx.emit(rule, f"alert rule {rule['id']}: {rule['summary']}")
        return EXIT_OK
    if args.action == "delete":
        if len(args.words) != 1 or not (args.words[0].isascii() and args.words[0].isdigit()):
            raise UsageError("alerts delete ID")
        rule = client.request("alerts.delete", {"id": int(args.words[0])})
        ctx.emit(rule, f"alert rule {rule['id']} deleted")
        return EXIT_OK
    if args.words:
        raise UsageError("alerts takes no arguments to list")
    listed = client.request("alerts.list", {})
    rows = [
        [r["id"], r["summary"], f"RAISED since {r['since']}" if r["alerting"] else "ok"]
        for r in listed["rules"]
    ]
    table = format_table(["rule", "watches", "state"], rows)
    ctx.emit(listed, f"{table}\n{plural(len(rows), 'rule')}" if rows else "no alert rules")
    return EXIT_OK


COMMAND = Command(
    "alerts",
    "list, add or delete alert rules (sensor above/below a value, or silent, for N minutes)",
    add_arguments,
    run,
    examples=(
        "farmhand alerts",
        "farmhand alerts add above fridge1 6 --minutes 10",
        "farmhand alerts add silent brewpi --minutes 15",
        "farmhand alerts delete 3",
    ),
)
