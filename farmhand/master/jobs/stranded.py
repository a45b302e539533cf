"""Why a job's queued tasks are not being dispatched: the `blocked` field of `jobs.get`.

Computed on demand for views (never on the dispatch path): first the cheap check whether some
online, enabled worker could take the job now (then it is only waiting its turn, or for its
retry delay); only if none can, every known worker is looked at to say why, e.g.
"no worker may run this: blocklisted on w1; needs tag gpu (not on w2)".
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..registry import RuntimeClient
from .board import BLOCKLIST_FAILURES, JobState
from .states import JOB_FINAL, JobStatus, TaskStatus

if TYPE_CHECKING:
    from .farm import JobFarm

NAMES_SHOWN = 5


def may_take(state: JobState, worker: RuntimeClient) -> bool:
    """The dispatcher's own test: the worker has the job's tags and is not blocklisted."""
    tags = state.rec.tags
    if tags and not set(tags).issubset(worker.tags):
        return False
    return state.blocklist.get(worker.name, 0) < BLOCKLIST_FAILURES


def blocked_reason(
    farm: JobFarm, state: JobState, clients: Iterable[RuntimeClient], now_mono: float
) -> str | None:
    """A sentence saying why the job's queued tasks wait, or None if they are merely queued
    (a worker may take them as soon as it has a free slot) or there are none."""
    job = state.rec
    if job.status in JOB_FINAL or job.status == JobStatus.PAUSED:
        return None
    if not state.counts[TaskStatus.QUEUED]:
        return None
    waits = _dependencies(farm, state)
    if waits:
        return waits
    if any(may_take(state, worker) for worker in farm.workers.values()):
        if len(state.held) == state.counts[TaskStatus.QUEUED]:
            next_s = max(0.0, min(state.held.values()) - now_mono)
            return f"waiting to retry failed tasks: the next in {next_s:.0f}s"
        return None
    return _why_no_worker(state, [c for c in clients if c.role == "worker"])


def _dependencies(farm: JobFarm, state: JobState) -> str | None:
    waits = []
    for job_id in state.rec.depends_on:
        status = farm.board.dependency_status(job_id)
        if status is None or status == JobStatus.COMPLETED:
            continue
        if status in (JobStatus.FAILED, JobStatus.CANCELED):
            waits.append(f"job {job_id} {status} (requeue or cancel it)")
        else:
            waits.append(f"job {job_id} ({status})")
    return "waits for " + "; ".join(waits) if waits else None


def _why_no_worker(state: JobState, workers: list[RuntimeClient]) -> str:
    if not workers:
        return "no worker may run this: no worker has ever connected"
    blocklisted, disabled, offline = [], [], []
    lacking: dict[str, list[str]] = {}  # missing tag → workers without it
    for worker in sorted(workers, key=lambda w: w.name):
        if state.blocklist.get(worker.name, 0) >= BLOCKLIST_FAILURES:
            blocklisted.append(worker.name)
            continue
        missing = [tag for tag in state.rec.tags if tag not in worker.tags]
        if missing:
            for tag in missing:
                lacking.setdefault(tag, []).append(worker.name)
        elif not worker.enabled:
            disabled.append(worker.name)
        elif not worker.online:
            offline.append(worker.name)
    parts = []
    if blocklisted:
        parts.append(f"blocklisted on {_names(blocklisted)}")
    for tag, names in lacking.items():
        parts.append(f"needs tag {tag} (not on {_names(names)})")
    if disabled:
        parts.append(f"disabled: {_names(disabled)}")
    if offline:
        parts.append(f"offline: {_names(offline)}")
    head = "no worker online may run this" if offline else "no worker may run this"
    return f"{head}: {'; '.join(parts)}"


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:NAMES_SHOWN])
    more = len(names) - NAMES_SHOWN
    return f"{shown} and {more} more" if more > 0 else shown
