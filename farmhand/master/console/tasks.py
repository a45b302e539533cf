"""Console: tasks, log (the api's task methods)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from farmhand.tables import format_duration, tasks_text

from .base import Command, Reply, UsageError, collector, is_number
from .jobs import job_id_of

if TYPE_CHECKING:
    from farmhand.master.console.shell import ConsoleConnection

COMMANDS: list[Command] = []
command = collector(COMMANDS)

LOG_TAIL_BYTES = 256 * 1024


@command(
    "tasks",
    "tasks ID",
    "a job's tasks: frames, status, worker, attempts made, elapsed, progress, why one failed",
    methods=("tasks.list",),
)
def tasks(console: ConsoleConnection, args: list[str]) -> Reply:
    result = console.call("tasks.list", {"job_id": job_id_of(args, "tasks ID")})
    return Reply(result, tasks_text(result["tasks"], _duration))


def _duration(seconds: float | None) -> str:
    return "-" if seconds is None else format_duration(seconds)


@command(
    "log", "log TASK [LINES]", "the last lines of a task's log (default 20)", methods=("tasks.log",)
)
def log_(console: ConsoleConnection, args: list[str]) -> Reply:
    if not 1 <= len(args) <= 2 or not all(is_number(arg) for arg in args):
        raise UsageError("usage: log TASK [LINES]")
    task_id, lines = int(args[0]), int(args[1]) if len(args) > 1 else 20
    size = console.call("tasks.log", {"task_id": task_id, "limit": 1})["size"]
    result = console.call(
        "tasks.log",
        {"task_id": task_id, "limit": LOG_TAIL_BYTES, "offset": max(0, size - LOG_TAIL_BYTES)},
    )
    tail = result["text"].splitlines()[-lines:] if lines else []
    return Reply(result, "\n".join(tail) if tail else "(the log is empty)")
