"""`farmhand watch`: live job and worker status. On a terminal the screen is redrawn whenever
a job or a client changes; piped, each change prints the whole view once more."""

from __future__ import annotations

import argparse
from typing import Any

from farmhand.tables import format_table

from .base import EXIT_OK, Command, Context, progress_bar, task_counts, to_json

REDRAW_S = 2.0  # at least this often, for times and progress that no event announces
CLEAR = "\x1b[H\x1b[2J"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limit", type=int, default=15, help="jobs shown (default 15)")
    parser.add_argument(
        "--count", type=int, default=None, help="stop after this many views (default: never)"
    )


def snapshot(ctx: Context, limit: int) -> dict[str, Any]:
    jobs = ctx.client.request("jobs.list", {"limit": limit})
    workers = ctx.client.request("clients.list", {"select": "role=worker"})
    return {"jobs": jobs["jobs"], "jobs_total": jobs["total"], "workers": workers["clients"]}


def render(view: dict[str, Any]) -> str:
    jobs = format_table(
        ["ID", "STATUS", "PRIO", "PROGRESS", "TASKS", "NAME"],
        [
            [j["id"], j["status"], j["priority"], progress_bar(j["progress"]), task_counts(j),
             j["name"]]
            for j in view["jobs"]
        ],
    )  # fmt: skip
    workers = format_table(
        ["WORKER", "STATUS", "ENABLED", "SLOTS", "RUNNING", "TAGS"],
        [
            [w["name"], w["status"], "yes" if w["enabled"] else "NO", w["slots"],
             len(w["running"]), ",".join(w["tags"]) or "-"]
            for w in view["workers"]
        ],
    )  # fmt: skip
    shown = f"{len(view['jobs'])} of {view['jobs_total']} jobs"
    online = sum(1 for w in view["workers"] if w["online"])
    return f"{jobs}\n{shown}\n\n{workers}\n{len(view['workers'])} workers ({online} online)"


def run(ctx: Context, args: argparse.Namespace) -> int:
    tty = ctx.out.isatty() and not ctx.as_json
    shown = 0
    events = ctx.client.subscribe(["jobs", "clients"], timeout=REDRAW_S)
    last: dict[str, Any] | None = None
    try:
        while args.count is None or shown < args.count:
            view = snapshot(ctx, args.limit)
            if view != last or tty:
                last = view
                shown += 1
                if ctx.as_json:
                    print(to_json(view), file=ctx.out, flush=True)
                else:
                    print((CLEAR if tty else "") + render(view), file=ctx.out, flush=True)
                    if not tty:
                        print(file=ctx.out, flush=True)
            if args.count is not None and shown >= args.count:
                break
            for _ in events:
                break  # a change (or REDRAW_S of quiet, which ends this pass of the iterator)
            else:
                events = ctx.client.subscribe(["jobs", "clients"], timeout=REDRAW_S)
    except KeyboardInterrupt:
        pass
    finally:
        events.close()
    return EXIT_OK


COMMAND = Command(
    "watch",
    "live job and worker status (Ctrl-C stops)",
    add_arguments,
    run,
    examples=("farmhand watch", "farmhand watch --limit 30", "farmhand --json watch --count 1"),
)
