"""The job farm: the only owner of jobs, tasks, attempts, blocklists and ids. Its verbs are what
API methods and console commands call: `submit`, `cancel`, `pause`, `resume`, `requeue`,
`requeue_task`, `set_priority` (operators); `task_started`, `task_output`, `task_progress`,
`task_finished` (workers' reports); `client_changed`, `reconcile_worker` (workers coming and
going). It owns the board, the journal, the dispatcher and the task logs; views only read them.
Allowed operator transitions are the JOB_ACTIONS and TASK_TRANSITIONS tables in states.py;
anything else is a -32009 conflict naming the current state.

Crash recovery: tasks that were dispatched or running when the master stopped come back in
flight but unconfirmed. A worker that says hello lists the attempts it still holds (`attempts`):
its listed tasks are kept, the others requeued. Tasks whose worker has not come back within the
recovery grace (one heartbeat timeout plus the longest wait between an agent's reconnects,
counted from when the master starts serving) are requeued by `run_once(now_mono)`. Requeuing a
lost task counts no attempt.

History: only live jobs are loaded at start and kept in memory; a finished job leaves the board
once stored, its views come from the database, and a verb loads it back (history.py). `delete`
removes a finished job; `expire(now)` is the retention (`job_retention_days`, 0: off).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gevent.event import AsyncResult

from models.jobhistory import JobHistory
from models.jobstore import JobStore, TaskRecord
from protocol.backoff import AGENT_RECONNECT_MAX_S
from protocol.errors import conflict

from ..events import EventBus
from ..registry import ClientRegistry, RuntimeClient
from ..ticker import Ticker
from . import attempts, history
from .board import BLOCKLIST_FAILURES, JobBoard, JobState
from .dispatcher import Dispatcher
from .journal import Journal
from .outcomes import Reason
from .previews import PreviewStore
from .retries import retry_delay
from .states import TASK_IN_FLIGHT, JobStatus, TaskStatus, job_action
from .submit import build_records
from .tasklogs import TaskLogs

log = logging.getLogger(__name__)

PRUNE_INTERVAL_S = 3600.0


def _log_stop_reply(worker: str) -> Callable[[Any, Any], None]:
    def on_reply(result: Any, error: Any) -> None:
        if error is not None:
            log.warning("worker %s did not take the stop order: %s", worker, error)

    return on_reply


class JobFarm:
    def __init__(
        self,
        jobstore: JobStore,
        events: EventBus,
        registry: ClientRegistry,
        data_dir: Path,
        wall: Callable[[], float],
        mono: Callable[[], float],
        heartbeat_timeout_s: float,
        log_retention_days: float = 30.0,
        job_retention_days: float = 0.0,
    ) -> None:
        self.jobstore = jobstore
        self.history = JobHistory(jobstore.store)
        self.job_retention_s = job_retention_days * 86400.0
        # Called with a job's id after jobs.delete or the retention removed it (e.g. to remove
        # data kept for it elsewhere, such as previews); exceptions are logged, not raised.
        self.on_job_deleted: list[Callable[[int], None]] = []
        self.deleting: set[int] = set()  # jobs being deleted: not to be loaded back
        # Called with the ids the retention deleted (the audit log records them).
        self.on_expired: list[Callable[[list[int]], None]] = []
        self.wall = wall
        self.mono = mono
        self.heartbeat_timeout_s = heartbeat_timeout_s
        # How long a restarted master waits for a worker that held tasks: a worker that was
        # between reconnects while the master was down may sleep AGENT_RECONNECT_MAX_S more.
        self.recovery_grace_s = heartbeat_timeout_s + AGENT_RECONNECT_MAX_S
        self.log_retention_s = log_retention_days * 86400.0
        self.journal = Journal(jobstore)
        self.board = JobBoard(self.journal, events, wall)
        self.logs = TaskLogs(data_dir / "logs", events)
        self.journal.before_commit = self.logs.sync
        # Thumbnails of finished tasks' outputs; a deleted job's go with `previews.forget`.
        self.previews = PreviewStore(data_dir / "previews", events)
        self.on_job_deleted.append(self.previews.forget)
        self.workers: dict[str, RuntimeClient] = {}
        # Lets cancel reach a worker that is online but disabled (not in `workers`).
        self.registry: ClientRegistry = registry
        self.dispatcher = Dispatcher(
            self.board, self.workers, self.logs, wall, mono, self._order_undelivered
        )
        # task id → monotonic deadline for in-flight tasks loaded at start, not yet confirmed
        self.unconfirmed: dict[int, float] = {}
        # ids of tasks that were in flight when the master started (see attempts.finished)
        self.recovered: set[int] = set()
        self.stopping = False  # see begin_shutdown
        self._last_prune = 0.0
        self._last_run: float | None = None
        self._ticker = Ticker("job farm", min(1.0, heartbeat_timeout_s / 3), self._housekeeping)

    # -- lifecycle -----------------------------------------------------------------------------
    def load(self) -> None:
        began = time.perf_counter()
        jobs = self.jobstore.load_jobs(skip_statuses=history.FINAL)  # the history stays on disk
        tasks = self.jobstore.load_tasks([job.id for job in jobs])
        self.board.load_state(jobs, tasks, self.jobstore.load_blocklist(), self.jobstore.max_ids())
        history.note_dependencies(self, sorted({dep for job in jobs for dep in job.depends_on}))
        self._hold_retries(tasks)
        self.previews.load()
        deadline = self.mono() + self.recovery_grace_s
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
        """The master is serving: the recovery grace runs from now (a long load is not in it)."""
        self._last_run = self.mono()
        deadline = self._last_run + self.recovery_grace_s
        self.unconfirmed = dict.fromkeys(self.unconfirmed, deadline)
        self.journal.start()
        self.dispatcher.start()
        self._ticker.start()

    def begin_shutdown(self) -> None:
        """The master is stopping: no more dispatch, and workers leaving now keep their tasks,
        which the next start recovers (a clean restart must not requeue running work)."""
        self.stopping = True
        self.dispatcher.stop()

    def stop(self) -> None:
        self._ticker.stop()
        self.dispatcher.stop()
        self.journal.stop()
        self.logs.close_all()

    def _housekeeping(self) -> None:
        self.run_once(self.mono())
        if self.mono() - self._last_prune > PRUNE_INTERVAL_S:
            self._last_prune = self.mono()
            self.expire(self.wall())
            if self.log_retention_s > 0:
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
                self.board.move(
                    task,
                    "lose",
                    error=f"worker {task.worker} did not come back",
                    reason=Reason.LOST,
                )
                requeued.append(task_id)
        if requeued:
            self.dispatcher.wake()
        return requeued

    def prune_logs(self, now: float) -> int:
        """Remove the task logs of jobs finished more than log_retention_days ago."""
        old = self.history.finished_before(history.FINAL, now - self.log_retention_s)
        # The stored `updated` is the finish time; prune keeps to its own rule with it.
        return self.logs.prune(dict.fromkeys(old, float("-inf")), self.log_retention_s, now)

    def expire(self, now: float) -> list[int]:
        """The retention: delete jobs finished more than job_retention_days before `now`."""
        if self.job_retention_s <= 0:
            return []
        deleted = history.expire(self, self.job_retention_s, now)
        if deleted:
            for listener in self.on_expired:
                listener(deleted)
        return deleted

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
        """Its tasks go back to the queue (no attempt counted), unless the master is stopping:
        then the next start recovers them (a clean restart must not requeue running work)."""
        if not self.stopping:
            attempts.worker_lost(self, client)

    def stop_worker(self, client: RuntimeClient, action: str, when: str) -> list[int]:
        """An operator's stop or restart of an online worker (the registry already marked it
        stopping, so it gets no new task). `now`: its in-flight tasks are requeued at once
        without counting an attempt (the worker kills their process groups; its late reports
        are stale). `idle`: they finish. Then the order goes out. Returns the requeued ids."""
        requeued: list[int] = []
        if when == "now" and not self.stopping:
            requeued = [task.id for task in self.board.running_on(client.name)]
            attempts.worker_lost(self, client, f"stopped by the operator ({action} now)")
        if client.connection is not None:
            client.connection.call_async(
                "worker.stop", {"action": action, "when": when}, _log_stop_reply(client.name)
            )
        return requeued

    def worker_history(self, name: str, limit: int) -> list[TaskRecord]:
        """The tasks `name` ran or runs, most recent first: those the board holds, then those of
        finished jobs, which have left memory, from the database."""
        held = {task.id: task for task in self.board.tasks.values() if task.worker == name}
        stored = [t for t in self.history.worker_tasks(name, limit) if t.id not in held]
        tasks = [*held.values(), *stored]
        tasks.sort(key=lambda task: (task.finished or task.started or 0.0, task.id), reverse=True)
        return tasks[:limit]

    def blocklisted_on(self, name: str) -> list[dict[str, Any]]:
        """Jobs whose failures on `name` are counted (its blocklist entries)."""
        return [
            {
                "job_id": state.id,
                "job": state.rec.name,
                "failures": state.blocklist[name],
                "blocked": state.blocklist[name] >= BLOCKLIST_FAILURES,
            }
            for state in self.board.jobs.values()
            if state.blocklist.get(name)
        ]

    def reconcile_worker(self, client: RuntimeClient, held: list[str]) -> None:
        """After a worker's hello: keep the tasks it still holds (`held`, attempt ids),
        requeue the others, and tell it to cancel attempts the master no longer wants."""
        attempts.reconcile_worker(self, client, held)

    def _order_undelivered(self, task: TaskRecord, error: str) -> None:
        attempts.order_undelivered(self, task, error)

    # -- workers' reports ----------------------------------------------------------------------
    def task_started(self, client: RuntimeClient, attempt: str) -> None:
        attempts.started(self, client, attempt)

    def task_output(self, client: RuntimeClient, attempt: str, data: str) -> None:
        attempts.output(self, client, attempt, data)

    def task_progress(self, client: RuntimeClient, attempt: str, percent: float) -> None:
        attempts.progress(self, client, attempt, percent)

    def task_finished(
        self,
        client: RuntimeClient,
        attempt: str,
        exit_code: int | None,
        error: str | None,
        reason: str | None = None,
    ) -> AsyncResult:
        """Record the outcome; the reply resolves once it is committed (-32009 if stale).
        `reason` is the worker's (outcomes.WORKER_REASONS), None if it succeeded or does
        not say."""
        return attempts.finished(self, client, attempt, exit_code, error, reason)

    def task_preview(
        self, client: RuntimeClient, task_id: int, frame: int | None, image: dict[str, Any]
    ) -> AsyncResult:
        """Keep a thumbnail of a task's output sent by the worker that ran it (`image`:
        content_type, width, height, data as bytes); resolves once its file is written."""
        # A job's last frames arrive after it finished, and a finished job has left memory.
        task = history.find_task(self, task_id)
        if task.worker != client.name:
            raise conflict(f"task {task_id} was not run by {client.name}", "not_this_workers_task")
        return self.previews.add(
            task.job_id,
            task.id,
            frame,
            image["content_type"],
            image["width"],
            image["height"],
            image["data"],
        )

    # -- operators' verbs ----------------------------------------------------------------------
    def known_job(self, job_id: int) -> bool:
        """True for a job in memory or stored (jobs.submit's depends_on may name either)."""
        return job_id in self.board.jobs or self.history.status(job_id) is not None

    def submit(self, spec: dict[str, Any], now: float) -> JobState:
        """A read submission (jobs.submit.read_submission) becomes a job with fresh ids."""
        history.note_dependencies(self, spec["depends_on"])
        job_id, first_task_id = self.board.new_ids(len(spec["chunks"]))
        job, tasks = build_records(spec, job_id, first_task_id, now)
        # On an idle farm the insert stores the first dispatch records too: one commit from
        # the submit to the orders (Dispatcher.plan_new_job).
        planned = self.dispatcher.plan_new_job(job, tasks)
        try:
            self.jobstore.insert_job(job, tasks)
        except BaseException:
            self.dispatcher.unplan(planned)
            raise
        state = self.board.add_job(job, tasks)
        log.info("job %d (%s) submitted: %d tasks", job_id, job.name, len(tasks))
        if planned:
            self.dispatcher.send_planned(planned)
        self.dispatcher.wake()
        return state

    def cancel(self, state: JobState) -> None:
        job_action(state.rec.status, "cancel")
        log.info("job %d (%s) canceled by the operator", state.id, state.rec.name)
        self.board.set_job_status(state, JobStatus.CANCELED)
        attempts.cancel_tasks(self, state, "job canceled")

    def pause(self, state: JobState) -> None:
        target = job_action(state.rec.status, "pause")
        assert target is not None
        self.board.set_job_status(state, target)

    def resume(self, state: JobState) -> None:
        job_action(state.rec.status, "resume")
        self.board.set_job_status(state, state.derived_status())
        self.dispatcher.wake()

    def requeue(self, state: JobState) -> int:
        """Failed and canceled tasks go back to the queue with fresh attempts."""
        target = job_action(state.rec.status, "requeue")
        again = [
            task for task in state.tasks if task.status in (TaskStatus.FAILED, TaskStatus.CANCELED)
        ]
        if not again:
            raise conflict(
                f"job {state.id} has no failed or canceled tasks to requeue", "nothing_to_requeue"
            )
        for task in again:
            self.board.move(task, "requeue", attempts=0, exit_code=None, finished=None)
        self.board.clear_blocklist(state)  # a fresh start for every worker, stored
        self.board.set_job_status(state, target or state.derived_status())
        log.info("job %d: %d tasks requeued", state.id, len(again))
        self.dispatcher.wake()
        return len(again)

    def job_for_change(self, job_id: int) -> JobState:
        """The job for an operator verb: from memory, or loaded back from the database."""
        return history.job_for_change(self, job_id)

    def delete(self, job_id: int) -> None:
        """jobs.delete: a completed, failed or canceled job, its tasks, blocklist and logs go."""
        history.delete_job(self, job_id)

    def set_priority(self, state: JobState, priority: int) -> None:
        if self.board.set_priority(state, priority):
            self.dispatcher.wake()

    def requeue_task(self, task_id: int) -> TaskRecord:
        if task_id not in self.board.tasks:
            stored = history.find_task(self, task_id)
            self.job_for_change(stored.job_id)
        task = self.board.task(task_id)
        if task.status in TASK_IN_FLIGHT or task.status == TaskStatus.QUEUED:
            raise conflict(
                f"task {task_id} is {task.status}: only completed, failed or canceled "
                "tasks can be requeued",
                "bad_task_state",
            )
        state = self.board.jobs[task.job_id]
        self.board.move(task, "requeue", attempts=0, exit_code=None, finished=None)
        if state.rec.status in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELED):
            self.board.set_job_status(state, state.derived_status())
        log.info("task %d (job %d) requeued by the operator", task.id, task.job_id)
        self.dispatcher.wake()
        return task

    def status(self) -> dict[str, Any]:
        return {
            "jobs": len(self.board.jobs),  # in memory: the live ones and the just finished
            "tasks_in_flight": len(self.board.attempts),
            "tasks_completed_total": self.board.completed_total,
            "workers_ready": len(self.workers),
            "journal_pending": self.journal.pending,
            "journal_flushes": self.journal.flushes,
            "journal_rows_written": self.journal.rows_written,
        }
