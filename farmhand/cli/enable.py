"""`farmhand enable SELECTOR` and `farmhand disable SELECTOR`: which clients get new tasks;
both print exactly which clients changed."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from .base import EXIT_OK, Command, Context


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "select", nargs="+", metavar="SELECTOR", help="e.g. `render-0*` or `tag=gpu`"
    )


def runner(verb: str) -> Callable[[Context, argparse.Namespace], int]:
    def run(ctx: Context, args: argparse.Namespace) -> int:
        selector = " ".join(args.select)
        result = ctx.client.request(f"clients.{verb}", {"select": selector})
        matched, changed = result["matched"], result["changed"]
        lines = []
        if not matched:
            lines.append(f"no client matches {selector!r}: nothing {verb}d")
        if changed:
            lines.append(f"{verb}d {len(changed)}: {', '.join(changed)}")
        unchanged = [name for name in matched if name not in changed]
        if unchanged:
            lines.append(f"already {verb}d: {', '.join(unchanged)}")
        ctx.emit(result, "\n".join(lines))
        return EXIT_OK

    return run


ENABLE = Command(
    "enable",
    "enable clients: workers get new tasks again",
    add_arguments,
    runner("enable"),
    examples=("farmhand enable render-0*", "farmhand enable tag=gpu offline"),
)
DISABLE = Command(
    "disable",
    "disable clients: no new tasks for them; running work finishes",
    add_arguments,
    runner("disable"),
    examples=("farmhand disable render-03", "farmhand --json disable 'role=worker tag=old'"),
)
