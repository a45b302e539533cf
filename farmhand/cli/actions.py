"""Operator actions on a job: `cancel`, `pause`, `resume`, `requeue ID` and `priority ID N`;
each prints the job's new state."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from .base import EXIT_OK, Command, Context, positive_id


def add_job_id(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job_id", type=positive_id, metavar="ID", help="the job's id")


def add_priority(parser: argparse.ArgumentParser) -> None:
    add_job_id(parser)
    parser.add_argument("priority", type=int, metavar="N", help="0-100 (higher goes first)")


def runner(method: str) -> Callable[[Context, argparse.Namespace], int]:
    def run(ctx: Context, args: argparse.Namespace) -> int:
        params: dict[str, Any] = {"job_id": args.job_id}
        if method == "jobs.set_priority":
            params["priority"] = args.priority
        view = ctx.client.request(method, params)
        text = f"job {view['id']} ({view['name']}) is now {view['status']}"
        if method == "jobs.set_priority":
            text = f"job {view['id']} ({view['name']}) priority is now {view['priority']}"
        ctx.emit(view, text)
        return EXIT_OK

    return run


def action(name: str, method: str, summary: str) -> Command:
    return Command(name, summary, add_job_id, runner(method), examples=(f"farmhand {name} 7",))


CANCEL = action("cancel", "jobs.cancel", "cancel a job: running tasks are killed")
PAUSE = action("pause", "jobs.pause", "pause a job: no new tasks; running ones finish")
RESUME = action("resume", "jobs.resume", "resume a paused job")
REQUEUE = action("requeue", "jobs.requeue", "put a job's failed and canceled tasks back")
PRIORITY = Command(
    "priority",
    "set a job's priority (0-100, higher first)",
    add_priority,
    runner("jobs.set_priority"),
    examples=("farmhand priority 7 90",),
)
