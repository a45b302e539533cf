"""Numbers the dashboard derives from the master: throughput samples, a dispatch latency
histogram measured from events, and the Prometheus text exposition for /metrics.

The master counts completed tasks (`status` → farm.tasks_completed_total) but keeps no latency
figures, so dispatch latency is measured here: from the moment the dashboard hears a job created
(or a task requeued) to the moment it hears that task dispatched. Both observations travel the
same event connection, so the figure is the master's queueing delay plus a constant small skew.
"""

from __future__ import annotations

import bisect
import time
from collections import deque
from datetime import datetime
from typing import Any

LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
MAX_TRACKED = 200_000  # queued tasks and new jobs remembered while waiting for dispatch
SAMPLE_EVERY_S = 5.0
SAMPLES_KEPT = int(3 * 3600 / SAMPLE_EVERY_S)
JOB_STATUSES = ("queued", "active", "paused", "completed", "failed", "canceled")


class Histogram:
    """A cumulative Prometheus histogram."""

    def __init__(self, buckets: tuple[float, ...]):
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.sum += value
        self.count += 1

    def lines(self, name: str) -> list[str]:
        out, running = [], 0
        for bound, count in zip(self.buckets, self.counts, strict=False):
            running += count
            out.append(f'{name}_bucket{{le="{bound}"}} {running}')
        out.append(f'{name}_bucket{{le="+Inf"}} {self.count}')
        out.append(f"{name}_sum {self.sum:.6f}")
        out.append(f"{name}_count {self.count}")
        return out


class FarmMetrics:
    """Watches job and task events for dispatch latency; keeps completed-task samples."""

    def __init__(self) -> None:
        self.dispatch_latency = Histogram(LATENCY_BUCKETS_S)
        self._job_seen: dict[int, float] = {}
        self._task_queued: dict[int, float] = {}
        self.samples: deque[tuple[float, int]] = deque(maxlen=SAMPLES_KEPT)

    # -- events ----------------------------------------------------------------------------------
    def observe(self, topic: str, data: Any, now: float | None = None) -> None:
        if not isinstance(data, dict):
            return
        now = time.monotonic() if now is None else now
        if topic == "jobs":
            self._job_event(data, now)
        elif topic == "tasks":
            self._task_event(data, now)

    def _job_event(self, job: dict[str, Any], now: float) -> None:
        job_id = job.get("id")
        if not isinstance(job_id, int):
            return
        if job.get("status") in ("completed", "failed", "canceled"):
            self._job_seen.pop(job_id, None)
        elif job_id not in self._job_seen and job.get("status") == "queued":
            by_status = job.get("tasks_by_status") or {}
            if by_status.get("queued") == job.get("tasks_total"):  # just submitted
                self._remember(self._job_seen, job_id, now)

    def _task_event(self, task: dict[str, Any], now: float) -> None:
        task_id, status = task.get("id"), task.get("status")
        if not isinstance(task_id, int):
            return
        if status == "queued":
            self._remember(self._task_queued, task_id, now)
        elif status == "dispatched":
            since = self._task_queued.pop(task_id, None)
            if since is None and task.get("attempts") in (0, 1):
                since = self._job_seen.get(task.get("job_id", -1))
            if since is not None:
                self.dispatch_latency.observe(max(0.0, now - since))

    @staticmethod
    def _remember(table: dict[int, float], key: int, now: float) -> None:
        if len(table) >= MAX_TRACKED:
            table.pop(next(iter(table)))
        table[key] = now

    # -- throughput ------------------------------------------------------------------------------
    def sample(self, completed_total: int, now: float | None = None) -> None:
        now = time.time() if now is None else now
        if self.samples and completed_total < self.samples[-1][1]:
            self.samples.clear()  # the master restarted and counts from zero again
        self.samples.append((now, completed_total))

    def throughput(self, since_s: float = 3600.0, now: float | None = None) -> list[list[float]]:
        """[[unix time, tasks completed per minute]] over the last `since_s` seconds."""
        now = time.time() if now is None else now
        points = [s for s in self.samples if s[0] >= now - since_s - 60]
        out: list[list[float]] = []
        start = 0
        for t, total in points:
            while points[start][0] < t - 60:  # a trailing one-minute window
                start += 1
            t0, total0 = points[start]
            if t - t0 < SAMPLE_EVERY_S / 2:
                continue
            out.append([round(t, 3), round((total - total0) * 60 / (t - t0), 2)])
        return out


def _database_lines(database: Any) -> list[str]:
    """Gauges from `status` → database: whether the master can store, and what waits."""
    if not isinstance(database, dict):
        return []
    return [
        "# HELP farmhand_database_up Whether the master's database takes writes (1) or not (0).",
        "# TYPE farmhand_database_up gauge",
        f"farmhand_database_up {1 if database.get('healthy') else 0}",
        "# HELP farmhand_database_pending_writes Changes held in memory, not yet stored.",
        "# TYPE farmhand_database_pending_writes gauge",
        f"farmhand_database_pending_writes {database.get('pending_writes', 0)}",
        "# HELP farmhand_database_down_seconds How long the database has been down (0: up).",
        "# TYPE farmhand_database_down_seconds gauge",
        f"farmhand_database_down_seconds {database.get('down_s', 0)}",
        "# HELP farmhand_database_reconnects_total Reconnects to the database since start.",
        "# TYPE farmhand_database_reconnects_total counter",
        f"farmhand_database_reconnects_total {database.get('reconnects', 0)}",
    ]


def _label(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


def _master_lines(status: dict[str, Any]) -> list[str]:
    """Which master answers (status → master): its role, the lease holder, the last takeover."""
    master = status.get("master")
    if not isinstance(master, dict):
        return []
    lines = [
        "# HELP farmhand_master_active Whether the master the dashboard reaches is the active"
        " one (1); standby masters accept no connections.",
        "# TYPE farmhand_master_active gauge",
        f"farmhand_master_active {1 if master.get('role') == 'active' else 0}",
        "# HELP farmhand_master_info The master the dashboard reaches: role and lease holder.",
        "# TYPE farmhand_master_info gauge",
        f'farmhand_master_info{{role="{_label(master.get("role"))}",'
        f'holder="{_label(master.get("holder") or "")}",'
        f'listen="{_label(status.get("listen", ""))}"}} 1',
    ]
    if master.get("generation") is not None:
        lines += [
            "# HELP farmhand_master_lease_generation Takeovers of the master lease so far.",
            "# TYPE farmhand_master_lease_generation counter",
            f"farmhand_master_lease_generation {master['generation']}",
        ]
    takeover = master.get("last_takeover")
    if isinstance(takeover, str):
        when = datetime.fromisoformat(takeover).timestamp()
        lines += [
            "# HELP farmhand_master_last_takeover_timestamp_seconds When the active master"
            " took over (Unix time).",
            "# TYPE farmhand_master_last_takeover_timestamp_seconds gauge",
            f"farmhand_master_last_takeover_timestamp_seconds {when:.3f}",
        ]
    return lines


def render_prometheus(
    status: dict[str, Any] | None, jobs_by_status: dict[str, int], metrics: FarmMetrics
) -> str:
    """The /metrics page: gauges from `status` and jobs.list totals, counters, the histogram."""
    lines = [
        "# HELP farmhand_master_up Whether the dashboard reaches the master.",
        "# TYPE farmhand_master_up gauge",
        f"farmhand_master_up {1 if status else 0}",
    ]
    if status:
        by_role = status.get("clients", {}).get("by_role", {})
        lines += ["# HELP farmhand_clients_online Clients connected now, by role."]
        lines += ["# TYPE farmhand_clients_online gauge"]
        lines += [
            f'farmhand_clients_online{{role="{r}"}} {v["online"]}' for r, v in by_role.items()
        ]
        lines += ["# HELP farmhand_clients Clients known to the master, by role."]
        lines += ["# TYPE farmhand_clients gauge"]
        lines += [f'farmhand_clients{{role="{r}"}} {v["total"]}' for r, v in by_role.items()]
        lines += ["# HELP farmhand_jobs Jobs by status.", "# TYPE farmhand_jobs gauge"]
        lines += [f'farmhand_jobs{{status="{s}"}} {n}' for s, n in jobs_by_status.items()]
        farm = status.get("farm", {})
        devices = status.get("devices", {})
        lines += [
            "# HELP farmhand_tasks_completed_total Tasks completed (since the master started).",
            "# TYPE farmhand_tasks_completed_total counter",
            f"farmhand_tasks_completed_total {farm.get('tasks_completed_total', 0)}",
            "# HELP farmhand_tasks_in_flight Tasks dispatched or running now.",
            "# TYPE farmhand_tasks_in_flight gauge",
            f"farmhand_tasks_in_flight {farm.get('tasks_in_flight', 0)}",
            "# HELP farmhand_pours_total Pours recorded (since the master started).",
            "# TYPE farmhand_pours_total counter",
            f"farmhand_pours_total {devices.get('pours_recorded', 0)}",
        ]
        lines += _database_lines(status.get("database"))
        lines += _master_lines(status)
    lines += [
        "# HELP farmhand_dispatch_latency_seconds Job submitted or task requeued to dispatched,"
        " as observed by the dashboard.",
        "# TYPE farmhand_dispatch_latency_seconds histogram",
        *metrics.dispatch_latency.lines("farmhand_dispatch_latency_seconds"),
    ]
    return "\n".join(lines) + "\n"
