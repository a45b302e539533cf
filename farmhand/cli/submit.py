"""`farmhand submit NAME [--frames F] [--chunk N] [--priority N] [--tags a,b] [--template T]
[-p KEY=VALUE]… [--after ID] [--wait] [-- ARGV…]`: submit a job and print its id; with --wait,
follow it to the end (exit 0 when it completed, 1 when it failed or was canceled).

ARGV may hold placeholders the farm fills in per task: {frame} (the task's first frame),
{start}, {end}, {frames} ("start-end"), {task} (its index) and {job} (the job id). With
--template the template makes the argv from its params (`farmhand templates` lists them);
their values are typed by the template (numbers, true/false, comma-separated lists).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from .base import (
    EXIT_FAILED,
    EXIT_OK,
    Command,
    Context,
    UsageError,
    duration,
    progress_bar,
    task_counts,
    to_json,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.usage = (
        "farmhand submit NAME [--frames F] [--chunk N] [--priority N] [--tags a,b] "
        "[--template T] [-p KEY=VALUE]... [--after ID[,ID]] [--wait] [-- ARGV...]"
    )
    parser.add_argument("name", metavar="NAME", help="the job's name")
    parser.add_argument(
        "argv", nargs="*", metavar="ARGV", help="the program and its arguments (after --)"
    )
    parser.add_argument("--frames", help='frame ranges: "1-250", "1-10,20", "1-100x5", "-5-5"')
    parser.add_argument("--chunk", type=int, help="frames per task (default 1)")
    parser.add_argument("--priority", type=int, help="0-100 (default 50)")
    parser.add_argument("--tags", help="tags a worker must all have, comma-separated")
    parser.add_argument("--template", metavar="T", help="a job template: command, blender, …")
    parser.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a template param (repeatable), e.g. -p file=/farm/shot.blend",
    )
    parser.add_argument(
        "--after", action="append", default=[], metavar="ID", help="run after these jobs"
    )
    parser.add_argument("--outputs", metavar="GLOB", help="the files tasks write (for previews)")
    parser.add_argument("--max-attempts", type=int, help="attempts per task (default 3)")
    parser.add_argument("--timeout", type=float, metavar="S", help="seconds a task may run")
    parser.add_argument(
        "--retry-delay",
        type=float,
        metavar="S",
        help="wait before a failed task runs again, doubling after (default 10 s; 0: at once)",
    )
    parser.add_argument(
        "--progress",
        metavar="REGEX",
        help="read progress from the output: a group named percent, frame or count (frames "
        "done, like ffmpeg's frame=); default Blender's Fra:N and NN%%",
    )
    parser.add_argument("--cwd", help="the tasks' working directory on the worker")
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE", help="environment (repeatable)"
    )
    parser.add_argument("--wait", action="store_true", help="follow the job until it ends")


def job_params(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    params: dict[str, Any] = {"name": args.name}
    if args.argv:
        params["argv"] = args.argv
    elif args.template in (None, "command"):
        raise UsageError("give the command after --, e.g. -- render -f {frame}")
    pairs = (
        ("frames", args.frames),
        ("chunk", args.chunk),
        ("priority", args.priority),
        ("template", args.template),
        ("outputs", args.outputs),
        ("max_attempts", args.max_attempts),
        ("timeout_s", args.timeout),
        ("retry_delay_s", args.retry_delay),
        ("progress_regex", args.progress),
        ("cwd", args.cwd),
    )
    params.update((key, value) for key, value in pairs if value is not None)
    if args.tags is not None:
        tags = [tag.strip() for tag in args.tags.split(",") if tag.strip()]
        if not tags:
            raise UsageError("--tags: give at least one tag, e.g. --tags gpu,linux")
        params["tags"] = tags
    after = [part.strip() for text in args.after for part in text.split(",") if part.strip()]
    if after:
        if not all(part.isascii() and part.isdigit() for part in after):
            raise UsageError(f"--after: job ids are numbers, not {','.join(after)!r}")
        params["depends_on"] = [int(part) for part in after]
    if args.env:
        params["env"] = dict(_pair("--env", text) for text in args.env)
    if args.param:
        if args.template is None:
            raise UsageError("-p/--param sets a template's params: add --template T")
        types = _param_types(ctx, args.template)
        for text in args.param:
            key, value = _pair("-p", text)
            params[key] = _typed(key, value, types.get(key, "string"))
    return params


def _pair(flag: str, text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise UsageError(f"{flag} {text!r}: expected KEY=VALUE")
    return key, value


def _param_types(ctx: Context, name: str) -> dict[str, str]:
    for template in ctx.client.request("jobs.templates", {})["templates"]:
        if template["name"] == name:
            return {param["name"]: param["type"] for param in template["params"]}
    return {}  # the master says which templates there are


def _typed(key: str, value: str, kind: str) -> Any:
    try:
        if kind == "integer":
            return int(value)
        if kind == "number":
            return float(value)
    except ValueError:
        raise UsageError(f"-p {key}: {value!r} is not a {kind}") from None
    if kind == "boolean":
        if value.lower() not in ("true", "false", "yes", "no", "1", "0"):
            raise UsageError(f"-p {key}: {value!r} is not true or false")
        return value.lower() in ("true", "yes", "1")
    if kind == "strings":
        if value.startswith("["):
            try:
                return json.loads(value)
            except ValueError:
                raise UsageError(f"-p {key}: {value!r} is not a JSON list") from None
        return [item for item in value.split(",") if item]
    return value


def run(ctx: Context, args: argparse.Namespace) -> int:
    submitted = ctx.client.request("jobs.submit", job_params(ctx, args))
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
    """Progress on stderr: a bar redrawn in place on a terminal, a plain line per change when
    piped (for logs and CI)."""

    def __init__(self, ctx: Context, job_id: int) -> None:
        self.ctx = ctx
        self.job_id = job_id
        self.last = ""

    def __call__(self, view: dict[str, Any]) -> None:
        if self.ctx.as_json:
            return
        err = self.ctx.err
        if err.isatty():
            eta = view.get("eta_s")
            line = f"job {self.job_id} {view['status']:9} {progress_bar(view['progress'])} "
            line += f"{task_counts(view)}" + (f", eta {duration(eta)}" if eta else "")
        else:
            line = f"job {self.job_id}: {view['status']} {view['progress']:.0f}% "
            line += f"({task_counts(view)})"
        if line == self.last:
            return
        self.last = line
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
        "farmhand submit shot-010 --template blender --frames 1-250 --chunk 5 "
        "-p file=/farm/shot.blend -p device=CPU --wait",
        "farmhand submit movie --template ffmpeg --after 41 -p input=/farm/render/####.png "
        "-p output=/farm/shot.mp4",
        "farmhand submit nightly --tags linux --wait -- make test",
    ),
)
