"""`farmhand log TASK [-f] [--lines N]`: a task's log; -f follows it while the task runs."""

from __future__ import annotations

import argparse

from .base import EXIT_OK, Command, Context, positive_id, to_json

TAIL_BYTES = 256 * 1024


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task_id", type=positive_id, metavar="TASK", help="the task's id")
    parser.add_argument(
        "-f", "--follow", action="store_true", help="keep printing as the task writes"
    )
    parser.add_argument(
        "-n", "--lines", type=int, default=None, help="only the last N lines (default: all)"
    )


def run(ctx: Context, args: argparse.Namespace) -> int:
    client = ctx.client
    offset = 0
    if args.lines is not None:
        size = client.log(args.task_id, 0, limit=1)["size"]
        offset = max(0, size - TAIL_BYTES)
    if not args.follow:
        part = client.log(args.task_id, offset)
        pieces = [part["text"]]
        while part["text"] and part["next_offset"] < part["size"]:  # the master reads in slices
            part = client.log(args.task_id, part["next_offset"])
            pieces.append(part["text"])
        text = "".join(pieces)
        if args.lines is not None:
            text = "".join(text.splitlines(keepends=True)[-args.lines :] if args.lines else [])
        if ctx.as_json:
            print(to_json({**part, "text": text}), file=ctx.out)
        else:
            print(text, end="", file=ctx.out, flush=True)
        return EXIT_OK
    first = True
    for text in client.follow_log(args.task_id, offset):
        if first and args.lines is not None:
            text = "".join(text.splitlines(keepends=True)[-args.lines :] if args.lines else [])
        first = False
        if ctx.as_json:
            print(to_json({"task_id": args.task_id, "text": text}), file=ctx.out, flush=True)
        else:
            print(text, end="", file=ctx.out, flush=True)
    return EXIT_OK


COMMAND = Command(
    "log",
    "print a task's log; -f follows it until the task ends",
    add_arguments,
    run,
    examples=("farmhand log 12", "farmhand log 12 -f", "farmhand log 12 -n 20"),
)
