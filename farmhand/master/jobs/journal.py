"""Write-behind for jobs and tasks with group commit: one transaction per flush.

Changes are collected in memory; the flusher greenlet writes everything changed so far in one
transaction (in the Store's DB thread), then wakes whoever waited on `committed()`. While a
flush runs, new changes pile up for the next one, so batches grow with the load by themselves.
A failed flush keeps its changes and retries: nothing acknowledged is ever lost. While the
database is down it retries when the Store will take the next attempt, without a traceback.
`after_commit(fn)` is the cheap form of `committed()` for the hub's own use (the dispatcher
sends its orders from it): `fn()` runs in the flusher right after the commit, no greenlet
switch, no AsyncResult.

A change nobody waits for (a task reported running, its progress: `urgent=False`) does not
start a flush of its own: it rides along with the next one, at the latest after
`LAZY_FLUSH_S`. One fsync less per task, and a result never waits behind a flush that only
stores a start.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from typing import Any

import gevent
from gevent.event import AsyncResult, Event

from models.health import DatabaseUnavailable
from models.jobstore import BlocklistRecord, JobRecord, JobStore, TaskRecord
from protocol.backoff import Backoff

log = logging.getLogger(__name__)

RETRY_DELAY_S = 0.5  # the first retry after an unexpected error; then backing off
MAX_RETRY_S = 30.0
LAZY_FLUSH_S = 0.2  # how long a change nobody waits for may stay in memory only


class Journal:
    def __init__(self, jobstore: JobStore) -> None:
        self._jobstore = jobstore
        self._jobs: dict[int, JobRecord] = {}
        self._tasks: dict[int, TaskRecord] = {}
        self._blocklist: dict[tuple[int, str], BlocklistRecord] = {}
        self._waiters: list[tuple[AsyncResult, Any]] = []
        self._after_commit: list[Callable[[], None]] = []
        self._wanted = Event()
        self._loop: gevent.Greenlet | None = None
        self.flushes = 0
        self.rows_written = 0
        self._backoff = Backoff(RETRY_DELAY_S, MAX_RETRY_S)
        self._retry_in_s = RETRY_DELAY_S
        self._lazy_timer: Any = None  # the hub timer that flushes lazy changes, while armed
        # Runs (and may wait) before every commit: the task logs put their queued lines on disk
        # first, so that a result stored is never one whose output a crash then loses.
        self.before_commit: Callable[[], None] = lambda: None

    def job_changed(self, job: JobRecord) -> None:
        self._jobs[job.id] = job
        self._wanted.set()

    def task_changed(self, task: TaskRecord, *, urgent: bool = True) -> None:
        self._tasks[task.id] = task
        if urgent:
            self._wanted.set()
        elif self._lazy_timer is None:
            self._lazy_timer = gevent.get_hub().loop.timer(LAZY_FLUSH_S)
            self._lazy_timer.start(self._lazy_due)

    def _lazy_due(self) -> None:
        """The lazy changes' time is up (a hub callback): the next flush takes them."""
        timer, self._lazy_timer = self._lazy_timer, None
        if timer is not None:
            timer.close()
        if self._tasks:
            self._wanted.set()

    def blocklist_changed(self, row: BlocklistRecord) -> None:
        self._blocklist[(row.job_id, row.worker)] = row
        self._wanted.set()

    def committed(self, result: Any = None) -> AsyncResult:
        """Resolves to `result` once everything changed before this call is in the database."""
        waiter = AsyncResult()
        self._waiters.append((waiter, result))
        self._wanted.set()
        return waiter

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback()` once everything changed before this call is in the database."""
        self._after_commit.append(callback)
        self._wanted.set()

    @property
    def pending(self) -> int:
        return len(self._jobs) + len(self._tasks) + len(self._blocklist)

    def flush(self) -> bool:
        """Write what is pending in one transaction; True on success (tests call this)."""
        live_jobs, live_tasks, live_blocklist = self._jobs, self._tasks, self._blocklist
        waiters, callbacks = self._waiters, self._after_commit
        self._jobs, self._tasks, self._blocklist, self._waiters = {}, {}, {}, []
        self._after_commit = []
        # Snapshots: the hub keeps changing the live records while the DB thread writes.
        jobs = [copy.copy(job) for job in live_jobs.values()]
        tasks = [copy.copy(task) for task in live_tasks.values()]
        blocklist = list(live_blocklist.values())
        try:
            if jobs or tasks or blocklist:
                self.before_commit()
                self._jobstore.save_changes(jobs, tasks, blocklist)
        except Exception as exc:
            self._note_failure(exc, len(jobs), len(tasks))
            for key, job in live_jobs.items():
                self._jobs.setdefault(key, job)
            for key, task in live_tasks.items():
                self._tasks.setdefault(key, task)
            for pair, row in live_blocklist.items():
                self._blocklist.setdefault(pair, row)
            self._waiters = waiters + self._waiters
            self._after_commit = callbacks + self._after_commit
            return False
        self._backoff.reset()
        self.flushes += 1
        self.rows_written += len(jobs) + len(tasks) + len(blocklist)
        for callback in callbacks:
            try:
                callback()
            except Exception:
                log.exception("after-commit callback failed")
        for waiter, result in waiters:
            waiter.set(result)
        return True

    def _note_failure(self, exc: Exception, jobs: int, tasks: int) -> None:
        if isinstance(exc, DatabaseUnavailable):
            # The Store logs the outage once and knows when it takes the next attempt.
            self._retry_in_s = max(exc.retry_in_s, 0.05)
            return
        self._retry_in_s = self._backoff.next_delay()
        log.exception(
            "writing %d jobs and %d tasks failed; retrying in %.1f s", jobs, tasks, self._retry_in_s
        )

    def start(self) -> None:
        self._loop = gevent.spawn(self._run)

    def stop(self) -> None:
        """Stop the flusher and write what is left."""
        if self._loop is not None:
            self._loop.kill()
            self._loop = None
        if self._lazy_timer is not None:
            self._lazy_timer.close()
            self._lazy_timer = None
        if self.pending or self._waiters or self._after_commit:
            self.flush()

    def _run(self) -> None:
        while True:
            self._wanted.wait()
            # Let the greenlets woken together with this one run first: a task.finished wakes
            # the dispatcher too, and its next dispatch then shares this commit instead of
            # waiting for the one after (each order waits for its dispatch to be committed).
            gevent.sleep(0)
            self._wanted.clear()
            if not self.flush():
                gevent.sleep(self._retry_in_s)
                self._wanted.set()
