"""Plain-text tables, durations and counts, and the tables the console and the `farmhand`
command both print (clients, a job's tasks). Standard library only: the `farmhand` command runs
without gevent."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Left-aligned columns, two spaces apart, headers in capitals; no trailing spaces."""
    cells = [[str(cell) for cell in row] for row in rows]
    titles = [header.upper() for header in headers]
    widths = [len(title) for title in titles]
    for row in cells:
        for index, cell in enumerate(row):
            widths[index] = max(widths[index], len(cell))
    lines = ["  ".join(t.ljust(w) for t, w in zip(titles, widths, strict=True)).rstrip()]
    for row in cells:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def format_duration(seconds: float) -> str:
    """3 → "3s", 75 → "1m15s", 7300 → "2h01m", 200000 → "2d07h"."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def clients_text(clients: Sequence[dict[str, Any]], last_seen: Callable[[str | None], str]) -> str:
    """The `clients` table (rows of `clients.list`) and its count; `last_seen` words an offline
    client's last-seen stamp (None: never seen)."""
    table = format_table(
        [
            "name",
            "role",
            "host",
            "status",
            "enabled",
            "last seen",
            "slots",
            "tags",
            "running",
            "schedule",
        ],
        [
            [
                row["name"],
                row["role"],
                row["host"] or "-",
                _client_status(row),
                "yes" if row["enabled"] else "NO",
                "now" if row["online"] else last_seen(row["last_seen"]),
                row["slots"],
                ",".join(row["tags"]) or "-",
                len(row["running"]),
                _schedule_cell(row),
            ]
            for row in clients
        ],
    )
    online = sum(1 for row in clients if row["online"])
    disabled = sum(1 for row in clients if not row["enabled"])
    summary = f"{plural(len(clients), 'client')} ({online} online, {disabled} disabled)"
    return f"{table}\n{summary}" if clients else summary


def _client_status(row: dict[str, Any]) -> str:
    stopping = row.get("stopping")
    if stopping:
        when = "now" if stopping["when"] == "now" else "when idle"
        return f"{row['status']}, {stopping['action']} {when}"
    return str(row["status"])


def _schedule_cell(row: dict[str, Any]) -> str:
    schedule = row.get("schedule")
    if not schedule:
        return "-"
    return f"{schedule} (asleep)" if row.get("asleep") else str(schedule)


def parse_duration(text: str) -> float:
    """`90`, `90s`, `15m`, `12h`, `7d` → seconds; ValueError with a clear message otherwise."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    body, unit = (text[:-1], text[-1]) if text and text[-1] in units else (text, "s")
    try:
        value = float(body)
    except ValueError:
        raise ValueError(f"{text!r} is not a duration: use e.g. 3600, 90m, 12h or 7d") from None
    if not value >= 0 or value == float("inf"):
        raise ValueError(f"{text!r} is not a duration: it must be a positive number")
    return value * units[unit]


def tasks_text(tasks: Sequence[dict[str, Any]], duration: Callable[[float | None], str]) -> str:
    """A job's tasks (rows of `tasks.list`) and their count; `duration` words a task's run time
    (None: it has not run). ATTEMPTS counts the attempts made (a task that ran once shows 1);
    ELAPSED is a running task's time so far, a finished one's run time; REASON and ERROR say
    why its last attempt ended other than by success."""
    table = format_table(
        [
            "task", "#", "frames", "status", "worker", "attempts", "exit", "elapsed", "progress",
            "reason", "error",
        ],
        [
            [
                task["id"],
                task["index"],
                task["frames"] or "-",
                task["status"],
                task["worker"] or "-",
                task.get("attempts_made", task["attempts"]),
                "-" if task["exit_code"] is None else task["exit_code"],
                duration(task.get("elapsed_s", task.get("duration_s"))),
                f"{task.get('progress', 0):.0f}%",
                task.get("reason") or "-",
                task.get("error") or "-",
            ]
            for task in tasks
        ],
    )  # fmt: skip
    return f"{table}\n{plural(len(tasks), 'task')}"


def job_timing_text(view: dict[str, Any], duration: Callable[[float | None], str]) -> str:
    """A job view's timing in one line: `elapsed 2m10s, eta 40s, 12.5s per task, 4.8 tasks/min`
    (`-` for what is not known yet)."""
    average = view.get("avg_task_s")
    per_minute = view.get("tasks_per_minute")
    return ", ".join(
        [
            f"elapsed {duration(view.get('elapsed_s'))}",
            f"eta {duration(view.get('eta_s'))}",
            f"{duration(average) if average is not None else '-'} per task",
            f"{per_minute:g} tasks/min" if per_minute is not None else "- tasks/min",
        ]
    )


def last_delivery_text(view: dict[str, Any]) -> str:
    """A webhook's last delivery: `200 in 3.1 ms`, `no answer in 0.4 ms: …`, or `-`."""
    if view.get("last_time") is None:
        return "-"
    status = view.get("last_status")
    text = f"{status if status is not None else 'no answer'} in {view['last_latency_ms']:.1f} ms"
    return f"{text}: {view['last_error']}" if view.get("last_error") else text


def webhooks_text(webhooks: Sequence[dict[str, Any]]) -> str:
    """The webhooks table of the console's and the CLI's `webhooks`."""
    if not webhooks:
        return "no webhooks"
    headers = ["id", "url", "events", "signed", "delivered", "failed", "dropped", "queued", "last"]
    rows = [
        [
            view["id"],
            view["url"],
            ",".join(view["events"]),
            "yes" if view["has_secret"] else "no",
            view["delivered"],
            view["failed"],
            view["dropped"],
            view["queued"],
            last_delivery_text(view),
        ]
        for view in webhooks
    ]
    return f"{format_table(headers, rows)}\n{plural(len(webhooks), 'webhook')}"
