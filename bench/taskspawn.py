"""Bench: the worker's task processes alone, without a master: `true` tasks/s and CPU per task.

    python bench/taskspawn.py [--tasks 1000] [--slots 4]

Runs `--tasks` TaskProcess attempts of argv ["true"] in this gevent process, `--slots` at a
time, each with its report queue (no link: reports stay queued), task groups off; prints
tasks/s, this process's CPU per task (own, and of the reaped children) and, for comparison,
`subprocess.run(["true"])` in a loop in this process. Figures, not pass/fail.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import gevent  # noqa: E402
from gevent.event import Event  # noqa: E402

from farmhand.worker.reports import ReportQueue  # noqa: E402
from farmhand.worker.taskorder import TaskOrder  # noqa: E402
from farmhand.worker.taskpolicy import TaskPolicy  # noqa: E402
from farmhand.worker.taskprocess import TaskProcess  # noqa: E402


def cpu() -> tuple[float, float]:
    t = os.times()
    return t.user + t.system, t.children_user + t.children_system


def run_tasks(count: int, slots: int, work_dir: Path) -> tuple[float, float, float]:
    policy = TaskPolicy(work_dir)
    reports = ReportQueue()
    free = Event()
    running: list[TaskProcess] = []
    t0, (c0, k0) = time.perf_counter(), cpu()
    for n in range(count):
        while len(running) >= slots:
            free.clear()
            running = [task for task in running if task.running]
            if len(running) >= slots:
                free.wait(0.001)
        order = TaskOrder.from_params({"attempt": f"a{n}", "task_id": n, "job_id": 1,
                                       "argv": ["true"]})  # fmt: skip
        task = TaskProcess(order, reports=reports, policy=policy)
        task.done.rawlink(lambda _: free.set())
        task.start()
        running.append(task)
    for task in running:
        task.done.wait()
    wall = time.perf_counter() - t0
    c1, k1 = cpu()
    return count / wall, 1000 * (c1 - c0) / count, 1000 * (k1 - k0) / count


def run_plain(count: int) -> float:
    t0 = time.perf_counter()
    for _ in range(count):
        subprocess.run(["true"], check=True)
    return count / (time.perf_counter() - t0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--slots", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="farmhand-taskspawn-") as tmp:
        rate, own_ms, child_ms = run_tasks(args.tasks, args.slots, Path(tmp))
    plain = run_plain(args.tasks)
    print(
        f"TaskProcess `true` x{args.tasks}, {args.slots} at a time: {rate:,.0f} tasks/s, "
        f"CPU {own_ms:.2f} ms/task (+ reaped children {child_ms:.2f} ms); "
        f"subprocess.run loop here: {plain:,.0f}/s; ratio {rate / plain:.0%}"
    )
    return 0


if __name__ == "__main__":
    gevent.get_hub()
    sys.exit(main())
