"""`farmhand tasks ID`: a job's tasks, the console's table."""

from __future__ import annotations

import argparse

from .base import EXIT_OK, Command, Context, duration, positive_id, table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job_id", type=positive_id, metavar="ID", help="the job's id")


def run(ctx: Context, args: argparse.Namespace) -> int:
    listed = ctx.client.request("tasks.list", {"job_id": args.job_id})
    rows = [
        [
            task["id"],
            task["index"],
            task["frames"] or "-",
            task["status"],
            task["worker"] or "-",
            task["attempts"],
            "-" if task["exit_code"] is None else task["exit_code"],
            duration(task.get("duration_s")),
            f"{task.get('progress', 0):.0f}%",
        ]
        for task in listed["tasks"]
    ]
    headers = ["TASK", "#", "FRAMES", "STATUS", "WORKER", "ATTEMPTS", "EXIT", "DURATION"]
    text = table([*headers, "PROGRESS"], rows)
    count = len(rows)
    ctx.emit(listed, f"{text}\n{count} task{'s' if count != 1 else ''}")
    return EXIT_OK


COMMAND = Command(
    "tasks",
    "list a job's tasks: frames, status, worker, attempts, duration",
    add_arguments,
    run,
    examples=("farmhand tasks 7", "farmhand tasks 7 --json"),
)
