"""`farmhand job ID`: one job's view, a field per line."""

from __future__ import annotations

import argparse

from farmhand.tables import job_timing_text

from .base import EXIT_OK, Command, Context, duration, task_counts, to_json

FIELDS = ("name", "status", "priority", "progress", "tags", "frames", "created", "updated")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job_id", type=int, metavar="ID", help="the job's id")


def run(ctx: Context, args: argparse.Namespace) -> int:
    view = ctx.client.job(args.job_id)
    lines = [f"job {view['id']}"]
    for key in FIELDS:
        value = view.get(key)
        lines.append(
            f"  {key:9} {value if isinstance(value, str | int | float) else to_json(value)}"
        )
    lines.append(f"  {'tasks':9} {task_counts(view)}")
    lines.append(f"  {'timing':9} {job_timing_text(view, duration)}")
    lines.append(f"  {'argv':9} {to_json(view.get('argv'))}")
    for label, key in (("outputs", "outputs"), ("after", "depends_on"), ("blocked", "blocked")):
        if view.get(key):
            value = view[key]
            lines.append(f"  {label:9} {value if isinstance(value, str) else to_json(value)}")
    ctx.emit(view, "\n".join(lines))
    return EXIT_OK


COMMAND = Command("job", "show one job", add_arguments, run, examples=("farmhand job 7",))
