"""`farmhand clients [SELECTOR]`: workers and other clients, the console's table."""

from __future__ import annotations

import argparse

from farmhand.tables import clients_text

from .base import EXIT_OK, Command, Context


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "select", nargs="*", metavar="SELECTOR", help="e.g. `online role=worker render-0*`"
    )


def run(ctx: Context, args: argparse.Namespace) -> int:
    listed = ctx.client.request("clients.list", {"select": " ".join(args.select) or "all"})
    ctx.emit(listed, clients_text(listed["clients"], lambda stamp: stamp or "never"))
    return EXIT_OK


COMMAND = Command(
    "clients",
    "list workers and other clients (a selector narrows it)",
    add_arguments,
    run,
    examples=("farmhand clients", "farmhand clients online role=worker", "farmhand clients 'r*'"),
)
