"""`farmhand tasks ID`: a job's tasks, the console's table."""

from __future__ import annotations

import argparse

from farmhand.tables import tasks_text

from .base import EXIT_OK, Command, Context, duration, positive_id


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job_id", type=positive_id, metavar="ID", help="the job's id")


def run(ctx: Context, args: argparse.Namespace) -> int:
    listed = ctx.client.request("tasks.list", {"job_id": args.job_id})
    ctx.emit(listed, tasks_text(listed["tasks"], duration))
    return EXIT_OK


COMMAND = Command(
    "tasks",
    "list a job's tasks: frames, status, worker, attempts, duration",
    add_arguments,
    run,
    examples=("farmhand tasks 7", "farmhand tasks 7 --json"),
)
