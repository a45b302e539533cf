"""`farmhand submit NAME [--frames F] [--chunk N] [--priority N] [--tags a,b] [--wait] -- ARGV…`:
submit a job and print its id; with --wait, follow it to the end (exit 0 when it completed,
1 when it failed or was canceled)."""

from __future__ import annotations

import argparse
from typing import Any

from .base import EXIT_FAILED, EXIT_OK, Command, Context, UsageError, task_counts, to_json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.usage = "farmhand submit NAME [--frames F] [--chunk N] [--priority N] [--tags a,b] "
    parser.usage += "[--wait] -- ARGV..."
    parser.add_argument("name", metavar="NAME", help="the job's name")
    parser.add_argument("argv", nargs="+", metavar="ARGV", help="the program and its arguments")
    parser.add_argument("--frames", help='frame ranges, e.g. "1-250" or "1-10,20"')
    parser.add_argument("--chunk", type=int, help="frames per task (default 1)")
    parser.add_argument("--priority", type=int, help="0-100 (default 50)")
    parser.add_argument("--tags", help="tags a worker must all have, comma-separated")
    parser.add_argument("--wait", action="store_true", help="follow the job until it ends")


def run(ctx: Context, args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"name": args.name, "argv": args.argv}
    for key in ("frames", "chunk", "priority"):
        if getattr(args, key) is not None:
            params[key] = getattr(args, key)
    if args.tags is not None:
        tags = [tag.strip() for tag in args.tags.split(",") if tag.strip()]
        if not tags:
            raise UsageError("--tags: give at least one tag, e.g. --tags gpu,linux")
        params["tags"] = tags
    submitted = ctx.client.request("jobs.submit", params)
    job_id = submitted["job_id"]
    if not args.wait:
        ctx.emit(submitted, str(job_id))
        return EXIT_OK
    if not ctx.as_json:
        print(job_id, file=ctx.out, flush=True)
    view = ctx.client.wait(job_id, on_progress=Progress(ctx, job_id))
    if ctx.as_json:
        print(to_json(view), file=ctx.out)
    else:
        Progress.finish(ctx)
        print(f"job {job_id} {view['status']}: {task_counts(view)}", file=ctx.out)
    return EXIT_OK if view["status"] == "completed" else EXIT_FAILED


class Progress:
    """Progress on stderr: one line redrawn on a terminal, a line per change when piped."""

    def __init__(self, ctx: Context, job_id: int) -> None:
        self.ctx = ctx
        self.job_id = job_id
        self.last = ""

    def __call__(self, view: dict[str, Any]) -> None:
        if self.ctx.as_json:
            return
        line = f"job {self.job_id}: {view['status']} {view['progress']:.0f}% ({task_counts(view)})"
        if line == self.last:
            return
        self.last = line
        err = self.ctx.err
        if err.isatty():
            print(f"\r\x1b[K{line}", end="", file=err, flush=True)
        else:
            print(line, file=err, flush=True)

    @staticmethod
    def finish(ctx: Context) -> None:
        if ctx.err.isatty():
            print(file=ctx.err)


COMMAND = Command(
    "submit",
    "submit a job (its id is printed); --wait follows it to the end",
    add_arguments,
    run,
    examples=(
        'farmhand submit shot-010 --frames 1-250 --chunk 10 -- blender -b shot.blend -f "{frame}"',
        "farmhand submit nightly --tags linux --wait -- make test",
    ),
)
