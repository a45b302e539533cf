"""`farmhand jobs [STATUS] [--limit N]`: the newest jobs, as a table."""

from __future__ import annotations

import argparse
from typing import Any

from farmhand.tables import format_table

from .base import EXIT_OK, Command, Context, duration, task_counts

STATUSES = ("queued", "active", "paused", "completed", "failed", "canceled")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("status", nargs="?", choices=STATUSES, help="only jobs of this status")
    parser.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")


def run(ctx: Context, args: argparse.Namespace) -> int:
    params = {"limit": args.limit, **({"status": args.status} if args.status else {})}
    listed = ctx.client.request("jobs.list", params)
    rows = [
        [
            job["id"],
            job["status"],
            job["priority"],
            _progress(job),
            task_counts(job),
            job["name"],
        ]
        for job in listed["jobs"]
    ]
    text = format_table(["ID", "STATUS", "PRIO", "PROGRESS", "TASKS", "NAME"], rows)
    shown = f"{len(rows)} of {listed['total']} jobs"
    ctx.emit(listed, f"{text}\n{shown}" if rows else f"no jobs ({shown})")
    return EXIT_OK


def _progress(job: dict[str, Any]) -> str:
    """`45%`, and while it runs the time it has taken and is expected to take: `45% 2m10s
    +1m40s`."""
    text = f"{job['progress']:.0f}%"
    if job["status"] == "active" and job.get("elapsed_s") is not None:
        text += f" {duration(job['elapsed_s'])}"
        if job.get("eta_s") is not None:
            text += f" +{duration(job['eta_s'])}"
    return text


COMMAND = Command(
    "jobs",
    "list the newest jobs",
    add_arguments,
    run,
    examples=("farmhand jobs", "farmhand jobs failed --limit 20", "farmhand --json jobs"),
)
