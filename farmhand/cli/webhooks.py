"""`farmhand webhooks [list]`, `farmhand webhooks create URL --events E,E [--secret S]`,
`farmhand webhooks delete ID`: the master's webhooks and their delivery log."""

from __future__ import annotations

import argparse
from typing import Any

from farmhand.tables import webhooks_text

from .base import EXIT_OK, Command, Context, UsageError, positive_id


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", nargs="?", default="list", choices=("list", "create", "delete"))
    parser.add_argument(
        "target", nargs="?", metavar="URL|ID", help="create: the URL; delete: the id"
    )
    parser.add_argument(
        "--events", help="create: comma-separated events, e.g. job.completed,job.failed or *"
    )
    parser.add_argument("--secret", help="create: signs each body (X-Farmhand-Signature)")


def run(ctx: Context, args: argparse.Namespace) -> int:
    if args.action == "list":
        result = ctx.client.request("webhooks.list", {})
        ctx.emit(result, webhooks_text(result["webhooks"]))
    elif args.action == "create":
        if not args.target or not args.events:
            raise UsageError("webhooks create URL --events EVENT[,EVENT…] [--secret S]")
        params: dict[str, Any] = {
            "url": args.target,
            "events": [event for event in args.events.split(",") if event],
        }
        if args.secret:
            params["secret"] = args.secret
        result = ctx.client.request("webhooks.create", params)
        ctx.emit(result, f"created webhook {result['id']}: {result['url']}")
    else:
        try:
            webhook_id = positive_id(args.target or "")
        except argparse.ArgumentTypeError:
            raise UsageError("webhooks delete ID (a positive whole number)") from None
        result = ctx.client.request("webhooks.delete", {"id": webhook_id})
        ctx.emit(result, f"deleted webhook {args.target}")
    return EXIT_OK


COMMAND = Command(
    "webhooks",
    "list, create or delete webhooks (signed JSON POSTs of farm events)",
    add_arguments,
    run,
    examples=(
        "farmhand webhooks",
        "farmhand webhooks create https://hooks.example/farm --events job.completed,job.failed "
        "--secret s3cret",
        "farmhand webhooks delete 2",
    ),
)
