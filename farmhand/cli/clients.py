"""`farmhand clients [SELECTOR]`: workers and other clients, the console's table."""

from __future__ import annotations

import argparse

from .base import EXIT_OK, Command, Context, table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "select", nargs="*", metavar="SELECTOR", help="e.g. `online role=worker render-0*`"
    )


def run(ctx: Context, args: argparse.Namespace) -> int:
    listed = ctx.client.request("clients.list", {"select": " ".join(args.select) or "all"})
    rows = listed["clients"]
    text = table(
        ["NAME", "ROLE", "HOST", "STATUS", "ENABLED", "LAST SEEN", "SLOTS", "TAGS", "RUNNING"],
        [
            [
                row["name"],
                row["role"],
                row["host"] or "-",
                row["status"],
                "yes" if row["enabled"] else "NO",
                "now" if row["online"] else (row["last_seen"] or "never"),
                row["slots"],
                ",".join(row["tags"]) or "-",
                len(row["running"]),
            ]
            for row in rows
        ],
    )
    online = sum(1 for row in rows if row["online"])
    disabled = sum(1 for row in rows if not row["enabled"])
    summary = f"{len(rows)} client{'s' if len(rows) != 1 else ''} ({online} online, "
    summary += f"{disabled} disabled)"
    ctx.emit(listed, f"{text}\n{summary}" if rows else summary)
    return EXIT_OK


COMMAND = Command(
    "clients",
    "list workers and other clients (a selector narrows it)",
    add_arguments,
    run,
    examples=("farmhand clients", "farmhand clients online role=worker", "farmhand clients 'r*'"),
)
