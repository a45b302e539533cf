"""The job farm: loads jobs at start, owns the board, the journal, the dispatcher and the task
logs, and keeps the set of workers that may receive tasks.

Crash recovery: tasks that were dispatched or running when the master stopped come back in
flight but unconfirmed. A worker that says hello lists the attempts it still holds (`attempts`):
its listed tasks are kept, the others requeued. Tasks whose worker has not come back within the
heartbeat timeout are requeued by `run_once(now_mono)`. Requeuing a lost task counts no attempt.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from models.jobstore import JobStore, TaskRecord

from ..events import EventBus
from ..registry import RuntimeClient
from ..ticker import Ticker
from . import reports
from .board import JobBoard
from .dispatcher import Dispatcher, task_id_of
from .journal import Journal
from .retries import retry_delay
from .states import JOB_FINAL, TASK_IN_FLIGHT, TaskStatus
from .tasklogs import TaskLogs

log = logging.getLogger(__name__)

PRUNE_INTERVAL_S = 3600.0


class JobFarm:
    def __init__(
        self,
        jobstore: JobStore,
        events: EventBus,
        data_dir: Path,
        wall: Callable[[], float],
        mono: Callable[[], float],
        heartbeat_timeout_s: float,
        log_retention_days: float = 30.0,
    ) -> None:
        self.jobstore = jobstore
        self.wall = wall
        self.mono = mono
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self.log_retention_s = log_retention_days * 86400.0
        self.journal = Journal(jobstore)
        self.board = JobBoard(self.journal, events, wall)
        self.logs = TaskLogs(data_dir / "logs", events)
        self.workers: dict[str, RuntimeClient] = {}
        # Set by the master: lets cancel reach a worker that is online but disabled.
        self.registry: Any = None
        self.dispatcher = Dispatcher(
            self.board, self.workers, self.logs, wall, mono, self._order_undelivered
        )
        # task id → monotonic deadline for in-flight tasks loaded at start, not yet confirmed
        self.unconfirmed: dict[int, float] = {}
        # ids of tasks that were in flight when the master started (see reports.task_finished)
        self.recovered: set[int] = set()
        # Set while the master shuts down: workers leaving then keep their tasks, which the
        # next start recovers (a clean restart must not requeue running work).
        self.stopping = False
        self._last_prune = 0.0
        self._last_run: float | None = None
        self._ticker = Ticker("job farm", min(1.0, heartbeat_timeout_s / 3), self._housekeeping)

    # -- lifecycle -----------------------------------------------------------------------------
    def load(self) -> None:
        began = time.perf_counter()
        jobs = self.jobstore.load_jobs()
        tasks = self.jobstore.load_tasks()
        self.board.load_state(jobs, tasks, self.jobstore.load_blocklist(), self.jobstore.max_ids())
        self._hold_retries(tasks)
        deadline = self.mono() + self.heartbeat_timeout_s
        self.unconfirmed = {task.id: deadline for task in tasks if task.status in TASK_IN_FLIGHT}
        self.recovered = set(self.unconfirmed)
        log.info(
            "loaded %d jobs and %d tasks in %.3fs (%d in flight, awaiting their workers)",
            len(jobs),
            len(tasks),
            time.perf_counter() - began,
            len(self.unconfirmed),
        )

    def _hold_retries(self, tasks: list[TaskRecord]) -> None:
        """Tasks waiting for a retry when the master stopped wait out the rest of it."""
        now_wall, now_mono = self.wall(), self.mono()
        for task in tasks:
            if task.status != TaskStatus.QUEUED or not task.attempts or task.finished is None:
                continue
            state = self.board.jobs.get(task.job_id)
            if state is None:
                continue
            left_s = task.finished + retry_delay(state.rec, task.attempts) - now_wall
            if left_s > 0:
                self.board.hold(state, task, now_mono + left_s)

    def start(self) -> None:
        self._last_run = self.mono()
        self.journal.start()
        self.dispatcher.start()
        self._ticker.start()

    def stop(self) -> None:
        self._ticker.stop()
        self.dispatcher.stop()
        self.journal.stop()
        self.logs.close_all()

    def _housekeeping(self) -> None:
        self.run_once(self.mono())
        if self.log_retention_s > 0 and self.mono() - self._last_prune > PRUNE_INTERVAL_S:
            self._last_prune = self.mono()
            self.prune_logs(self.wall())

    def run_once(self, now_mono: float) -> list[int]:
        """Requeue recovered in-flight tasks whose worker did not come back in time. Time the
        master itself did not run (a tick far later than its interval) extends the wait: the
        workers' hellos may be waiting unread in the sockets."""
        last, self._last_run = self._last_run, now_mono
        late_s = now_mono - last - self._ticker.interval_s if last is not None else 0.0
        if late_s > self._ticker.interval_s and self.unconfirmed:
            log.warning("the master did not run for %.1fs: waiting that much longer", late_s)
            for task_id in self.unconfirmed:
                self.unconfirmed[task_id] += late_s
        expired = [
            task_id for task_id, deadline in self.unconfirmed.items() if deadline <= now_mono
        ]
        requeued = []
        for task_id in expired:
            del self.unconfirmed[task_id]
            task = self.board.tasks.get(task_id)
            if task is not None and task.status in TASK_IN_FLIGHT:
                log.info(
                    "task %d: worker %s did not come back after the restart; requeued",
                    task.id,
                    task.worker,
                )
                self.board.move(task, "lose", error=f"worker {task.worker} did not come back")
                requeued.append(task_id)
        if requeued:
            self.dispatcher.wake()
        return requeued

    def prune_logs(self, now: float) -> int:
        finished = {
            state.id: state.rec.updated
            for state in self.board.jobs.values()
            if state.rec.status in JOB_FINAL
        }
        return self.logs.prune(finished, self.log_retention_s, now)

    # -- workers -------------------------------------------------------------------------------
    def client_changed(self, client: RuntimeClient, change: str) -> None:
        """Registry watcher: keep `workers` = online, enabled workers; requeue a lost one's."""
        if client.role != "worker":
            return
        if client.online and client.enabled:
            self.workers[client.name] = client
            self.dispatcher.wake()
        else:
            self.workers.pop(client.name, None)
        if change in ("offline", "forgotten"):
            self.worker_lost(client)

    def worker_lost(self, client: RuntimeClient) -> None:
        if self.stopping:
            return
        lost = self.board.running_on(client.name)
        for task in lost:
            self.unconfirmed.pop(task.id, None)
            log.info(
                "task %d (attempt %s): worker %s lost; requeued without counting an attempt",
                task.id,
                task.attempt,
                client.name,
            )
            self.board.move(task, "lose", error=f"worker {client.name} lost")
            self.logs.append(task, f"--- farmhand: worker {client.name} lost ---\n")
        if lost:
            self.dispatcher.wake()

    def reconcile_worker(self, client: RuntimeClient, attempts: list[str]) -> None:
        """After a worker's hello: keep the tasks it still holds, requeue the others, and tell
        it to cancel attempts the master no longer wants."""
        held = set(attempts)
        for task in self.board.running_on(client.name):
            self.unconfirmed.pop(task.id, None)
            if task.attempt in held:
                log.info("task %d (attempt %s) confirmed on %s", task.id, task.attempt, client.name)
                continue
            self.board.move(task, "lose", error=f"{client.name} no longer runs it")
        mine = set(self.board.load.get(client.name, ()))
        connection = client.connection
        if connection is None:
            self.dispatcher.wake()
            return
        for attempt in held - mine:
            held_task = self.board.attempts.get(attempt)
            if held_task is None and not self._finished_here(attempt, client.name):
                connection.call_async(
                    "task.cancel", {"attempt": attempt}, lambda result, error: None
                )
        self.dispatcher.wake()

    def _finished_here(self, attempt: str, worker: str) -> bool:
        """True if `attempt` is the one that completed its task (its result may be resent);
        a canceled task keeps its attempt id too, but that attempt must be canceled."""
        task = self.board.tasks.get(task_id_of(attempt))
        return (
            task is not None
            and task.attempt == attempt
            and task.worker == worker
            and task.status == TaskStatus.COMPLETED
        )

    def _order_undelivered(self, task: TaskRecord, error: str) -> None:
        """The connection that carried a task.run ended before the worker answered it."""
        self.logs.append(task, f"--- farmhand: {error} ---\n")
        self.logs.close(task)
        reports.record_failure(
            self, self.board.jobs[task.job_id], task, None, error, self.wall(), blocklist=False
        )

    def status(self) -> dict[str, Any]:
        return {
            "jobs": len(self.board.jobs),
            "tasks_in_flight": len(self.board.attempts),
            "tasks_completed_total": self.board.completed_total,
            "workers_ready": len(self.workers),
            "journal_pending": self.journal.pending,
            "journal_flushes": self.journal.flushes,
            "journal_rows_written": self.journal.rows_written,
        }
