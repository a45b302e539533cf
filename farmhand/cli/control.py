"""Worker control from a shell: `farmhand inspect NAME`, `farmhand stop|restart SELECTOR
[--when now|idle]`, `farmhand schedule SELECTOR --set WINDOWS | --clear` and `farmhand prune
[--offline-for DURATION]`; each prints the console's words (farmhand/workertext.py)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from farmhand.tables import parse_duration
from farmhand.workertext import client_text, prune_text, schedule_text, stop_text

from .base import EXIT_OK, Command, Context


def add_name(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", help="the client's name")


def run_client(ctx: Context, args: argparse.Namespace) -> int:
    result = ctx.client.request("clients.get", {"name": args.name})
    ctx.emit(result, client_text(result, lambda stamp: stamp or "never"))
    return EXIT_OK


def add_selector(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "select", nargs="+", metavar="SELECTOR", help="e.g. `render-0*` or `tag=gpu`"
    )


def add_stop(parser: argparse.ArgumentParser) -> None:
    add_selector(parser)
    parser.add_argument(
        "--when",
        choices=("now", "idle"),
        default="idle",
        help="idle (default): after the running tasks finish; now: kill them (they are requeued)",
    )


def stop_runner(verb: str) -> Callable[[Context, argparse.Namespace], int]:
    def run(ctx: Context, args: argparse.Namespace) -> int:
        selector = " ".join(args.select)
        result = ctx.client.request(f"clients.{verb}", {"select": selector, "when": args.when})
        ctx.emit(result, stop_text(verb, selector, result))
        return EXIT_OK

    return run


def add_schedule(parser: argparse.ArgumentParser) -> None:
    add_selector(parser)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--set",
        metavar="WINDOWS",
        help="weekly windows without new tasks, master's local time: 'mon-fri 09:00-19:00, "
        "22:00-06:00'",
    )
    which.add_argument("--clear", action="store_true", help="remove the schedule")


def run_schedule(ctx: Context, args: argparse.Namespace) -> int:
    selector = " ".join(args.select)
    params = {"select": selector, "schedule": None if args.clear else args.set}
    result = ctx.client.request("clients.schedule", params)
    ctx.emit(result, schedule_text(selector, result))
    return EXIT_OK


def duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_prune(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--offline-for",
        type=duration,
        metavar="DURATION",
        help="forget clients offline longer than this (e.g. 7d, 12h, 3600; default: the "
        "master's prune_offline_s)",
    )


def run_prune(ctx: Context, args: argparse.Namespace) -> int:
    params: dict[str, Any] = {}
    if args.offline_for is not None:
        params["offline_for_s"] = args.offline_for
    result = ctx.client.request("clients.prune", params)
    ctx.emit(result, prune_text(result))
    return EXIT_OK


INSPECT = Command(
    "inspect",
    "one client: status, schedule, host facts, recent tasks, blocklists",
    add_name,
    run_client,
    examples=("farmhand inspect render-01",),
)
STOP = Command(
    "stop",
    "stop workers (exit code 76; a node leaves them stopped)",
    add_stop,
    stop_runner("stop"),
    examples=("farmhand stop render-03", "farmhand stop 'tag=old' --when now"),
)
RESTART = Command(
    "restart",
    "restart workers (exit code 75; their node starts them again)",
    add_stop,
    stop_runner("restart"),
    examples=("farmhand restart 'render-*' --when idle",),
)
SCHEDULE = Command(
    "schedule",
    "set or clear workers' sleep schedules (no new tasks inside the windows)",
    add_schedule,
    run_schedule,
    examples=(
        "farmhand schedule 'desk-*' --set 'mon-fri 09:00-19:00'",
        "farmhand schedule desk-04 --clear",
    ),
)
PRUNE = Command(
    "prune",
    "forget clients offline longer than a time (online ones stay)",
    add_prune,
    run_prune,
    examples=("farmhand prune --offline-for 30d",),
)
