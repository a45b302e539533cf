"""What every command of the `farmhand` CLI shares: the `Command` record the table in main.py
lists, the context a command runs with (the client, --json, the output streams), exit codes,
and how results and errors are printed (plain text, or JSON with --json)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from farmhand.client import Client

EXIT_OK = 0
EXIT_FAILED = 1  # the master refused, is unreachable, or the job failed or was canceled
EXIT_USAGE = 2  # bad flags or arguments (argparse uses 2 as well)


class UsageError(Exception):
    """Arguments the parser accepted but the command cannot use: exit 2."""


@dataclass
class Context:
    """What a command runs with. The client connects on its first call."""

    client: Client
    as_json: bool = False
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)

    def emit(self, result: Any, text: str) -> None:
        """The result as one JSON line with --json, else the text for people."""
        print(to_json(result) if self.as_json else text, file=self.out)


@dataclass(frozen=True)
class Command:
    """One command: its name, a one-line summary for --help, its arguments, what it does
    (returns the exit status), and examples shown under its --help."""

    name: str
    summary: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[Context, argparse.Namespace], int]
    examples: Sequence[str] = ()


def to_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def task_counts(view: dict[str, Any]) -> str:
    """`3/10 done` plus any failed or canceled tasks."""
    counts = view.get("tasks_by_status") or {}
    text = f"{counts.get('completed', 0)}/{view.get('tasks_total', 0)} done"
    for status in ("failed", "canceled"):
        if counts.get(status):
            text += f", {counts[status]} {status}"
    return text


BAR_WIDTH = 20


def progress_bar(percent: float, width: int = BAR_WIDTH) -> str:
    """`[#######-------------]  35.0%`, as the console draws it."""
    filled = round(max(0.0, min(100.0, percent)) / 100 * width)
    return f"[{'#' * filled}{'-' * (width - filled)}] {percent:5.1f}%"


def duration(seconds: float | None) -> str:
    """`-`, `42s`, `3m05s`, `2h07m`."""
    if seconds is None:
        return "-"
    whole = int(seconds)
    if whole < 60:
        return f"{seconds:.0f}s" if seconds >= 10 else f"{seconds:.1f}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def positive_id(text: str) -> int:
    """An argparse type: a job or task id."""
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) < 2**63:
        raise argparse.ArgumentTypeError(f"{text!r} is not an id (a positive whole number)")
    return int(text)
