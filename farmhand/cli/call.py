"""`farmhand call METHOD [JSON]`: call any method of the master (docs/api.md) with its params as
a JSON object; the result is printed as JSON."""

from __future__ import annotations

import argparse
import json

from .base import EXIT_OK, Command, Context, UsageError, to_json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("method", help="e.g. clients.list")
    parser.add_argument("params", nargs="?", default="{}", metavar="JSON", help="params object")


def run(ctx: Context, args: argparse.Namespace) -> int:
    try:
        params = json.loads(args.params)
    except ValueError as exc:
        raise UsageError(f"JSON: {exc}") from None
    if not isinstance(params, dict):
        raise UsageError('JSON: params must be an object, e.g. {"select": "all"}')
    result = ctx.client.request(args.method, params)
    print(to_json(result), file=ctx.out)
    return EXIT_OK


COMMAND = Command(
    "call",
    "call any JSON-RPC method; prints its result as JSON",
    add_arguments,
    run,
    examples=("farmhand call ping", 'farmhand call clients.disable \'{"select": "render-0*"}\''),
)
