"""The job board: the jobs in memory and their tasks, and the one place where a task changes state.

`move(task, event)` applies TASK_TRANSITIONS, keeps the per-job counters, queues and in-flight
indexes consistent, recomputes the job's status, hands changed records to the journal and
publishes `tasks`/`jobs` events. Dispatch, results and operator actions all go through it.
A task retried after a failure may be *held*: queued, but out of the dispatch queue until its
retry delay has passed (`release_held(now_mono)` puts it back).

Memory holds the live jobs only. A job that is finished (completed, failed, canceled) with no
task in flight leaves the board once its last change is stored (`settle`, after the journal's
commit): its views then come from the database (models/jobhistory.py), and an operator verb on
it loads it back (`revive`). `ended` remembers the failed or canceled jobs that left while a
live job depends on them, so that dependency keeps that job waiting without a database read.
"""

from __future__ import annotations

import heapq
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from functools import partial

from models.jobstore import BlocklistRecord, JobRecord, TaskRecord
from protocol.errors import not_found

from ..events import NOTICE_TOPIC, EventBus
from .journal import Journal
from .states import JOB_FINAL, TASK_IN_FLIGHT, JobStatus, TaskStatus, task_transition
from .views import job_view, task_view

log = logging.getLogger(__name__)

# A worker that failed this many tasks of a job gets no more of them (Flamenco's rule).
BLOCKLIST_FAILURES = 3


class JobState:
    """A job and its tasks, with what dispatch needs: a heap of queued task indexes."""

    __slots__ = (
        "blocklist",
        "completed_s",
        "counts",
        "first_started",
        "held",
        "in_flight",
        "last_finished",
        "queue",
        "rec",
        "tasks",
        "timed_completed",
    )

    def __init__(self, rec: JobRecord, tasks: list[TaskRecord]) -> None:
        self.rec = rec
        self.tasks = tasks
        self.counts: Counter[str] = Counter(task.status for task in tasks)
        self.queue = [task.index for task in tasks if task.status == TaskStatus.QUEUED]
        heapq.heapify(self.queue)
        self.in_flight: dict[int, TaskRecord] = {
            task.id: task for task in tasks if task.status in TASK_IN_FLIGHT
        }
        # worker name → failed attempts of this job on it (Flamenco's blocklist)
        self.blocklist: dict[str, int] = {}
        # task id → monotonic time its retry delay ends (queued, not yet dispatchable)
        self.held: dict[int, float] = {}
        # Timing, kept as tasks move (JobBoard.move) so a job view never walks the tasks:
        # the earliest start and latest end seen, and the run time of completed tasks.
        self.first_started: float | None = None
        self.last_finished: float | None = None
        self.completed_s = 0.0
        self.timed_completed = 0
        for task in tasks:
            self.note_times(task)
            self.count_completed(task, 1)

    def note_times(self, task: TaskRecord) -> None:
        if task.started is not None and (
            self.first_started is None or task.started < self.first_started
        ):
            self.first_started = task.started
        if (
            task.finished is not None
            and task.status != TaskStatus.QUEUED
            and (self.last_finished is None or task.finished > self.last_finished)
        ):
            self.last_finished = task.finished

    def count_completed(self, task: TaskRecord, sign: int) -> None:
        """Add (sign 1) or take back (-1) a completed task's run time."""
        started, finished = task.started, task.finished
        if task.status == TaskStatus.COMPLETED and started is not None and finished is not None:
            self.completed_s += sign * max(0.0, finished - started)
            self.timed_completed += sign

    @classmethod
    def summary(cls, rec: JobRecord, counts: Mapping[str, int]) -> JobState:
        """A finished job as the job view needs it: its record and task counts, no tasks."""
        state = cls(rec, [])
        state.counts.update(counts)
        return state

    @property
    def id(self) -> int:
        return self.rec.id

    def pop_queued(self) -> TaskRecord | None:
        while self.queue:
            task = self.tasks[heapq.heappop(self.queue)]
            if task.status == TaskStatus.QUEUED and task.id not in self.held:
                return task
        return None

    def derived_status(self) -> JobStatus:
        counts, total = self.counts, self.rec.tasks_total
        if counts[TaskStatus.COMPLETED] == total:
            return JobStatus.COMPLETED
        finished = counts[TaskStatus.COMPLETED] + counts[TaskStatus.FAILED]
        finished += counts[TaskStatus.CANCELED]
        if finished == total and counts[TaskStatus.FAILED]:
            return JobStatus.FAILED
        if counts[TaskStatus.QUEUED] == total:
            return JobStatus.QUEUED
        return JobStatus.ACTIVE


class JobBoard:
    def __init__(self, journal: Journal, events: EventBus, wall: Callable[[], float]) -> None:
        self.journal = journal
        self.events = events
        self.wall = wall
        self.jobs: dict[int, JobState] = {}
        self.tasks: dict[int, TaskRecord] = {}
        # attempt id → task, for every dispatched or running task
        self.attempts: dict[str, TaskRecord] = {}
        # worker name → attempt ids it holds
        self.load: dict[str, set[str]] = {}
        self.next_job_id = 1
        self.next_task_id = 1
        # Bumped whenever the set or order of dispatchable jobs may change.
        self.generation = 0
        self.completed_total = 0
        # (monotonic release time, job id, task id) of held tasks; stale entries are skipped
        self._held: list[tuple[float, int, int]] = []
        # job id → status of failed or canceled jobs out of memory that live jobs depend on
        self.ended: dict[int, str] = {}
        # ids of finished jobs waiting for the commit after which they leave memory
        self._leaving: set[int] = set()

    # -- loading -------------------------------------------------------------------------------
    def load_state(
        self,
        jobs: Iterable[JobRecord],
        tasks: Iterable[TaskRecord],
        blocklist: Iterable[BlocklistRecord],
        max_ids: tuple[int, int],
    ) -> None:
        by_job: dict[int, list[TaskRecord]] = {}
        for task in tasks:
            by_job.setdefault(task.job_id, []).append(task)
            self.tasks[task.id] = task
            if task.status in TASK_IN_FLIGHT and task.attempt and task.worker:
                self.attempts[task.attempt] = task
                self.load.setdefault(task.worker, set()).add(task.attempt)
        for job in jobs:
            job_tasks = sorted(by_job.get(job.id, []), key=lambda task: task.index)
            self.jobs[job.id] = JobState(job, job_tasks)
        for row in blocklist:
            if row.job_id in self.jobs and row.failures > 0:  # 0: cleared by jobs.requeue
                self.jobs[row.job_id].blocklist[row.worker] = row.failures
        self.next_job_id = max_ids[0] + 1
        self.next_task_id = max_ids[1] + 1
        self.generation += 1

    def new_ids(self, task_count: int) -> tuple[int, int]:
        """The next job id and the first of `task_count` task ids, taken for a new job."""
        job_id, first_task_id = self.next_job_id, self.next_task_id
        self.next_job_id += 1
        self.next_task_id += task_count
        return job_id, first_task_id

    def add_job(self, job: JobRecord, tasks: list[TaskRecord]) -> JobState:
        """A stored new job; its tasks may already be dispatched (Dispatcher.plan_new_job)."""
        state = JobState(job, tasks)
        self.jobs[job.id] = state
        for task in tasks:
            self.tasks[task.id] = task
        for task in state.in_flight.values():
            if task.attempt is not None:
                self.attempts[task.attempt] = task
                self.load.setdefault(task.worker or "", set()).add(task.attempt)
                if self.events.has_subscribers("tasks"):
                    self.events.publish("tasks", task_view(task, self.wall()))
        self.generation += 1
        self.publish_job(state)
        return state

    # -- finished jobs leave memory ------------------------------------------------------------
    def revive(
        self, job: JobRecord, tasks: list[TaskRecord], blocklist: Iterable[BlocklistRecord]
    ) -> JobState:
        """Load a stored finished job back (an operator verb acts on it). It leaves again after
        the next commit unless the verb made it live."""
        job.task_counts = None  # counted again when it leaves
        state = JobState(job, tasks)
        self.jobs[job.id] = state
        for task in tasks:
            self.tasks[task.id] = task
        for row in blocklist:
            if row.failures > 0:
                state.blocklist[row.worker] = row.failures
        self.ended.pop(job.id, None)
        self.generation += 1
        self.settle(state)
        return state

    def settle(self, state: JobState) -> None:
        """A finished job with nothing in flight leaves memory once its changes are stored."""
        if state.id in self._leaving or not _finished_and_idle(state):
            return
        self._leaving.add(state.id)
        # Stored with the job: list views of the history read them without counting tasks.
        state.rec.task_counts = {TaskStatus(s).value: n for s, n in state.counts.items() if n}
        self.journal.job_changed(state.rec)
        self.journal.after_commit(partial(self._leave, state.id))

    def _leave(self, job_id: int) -> None:
        self._leaving.discard(job_id)
        state = self.jobs.get(job_id)
        if state is not None and _finished_and_idle(state):
            self.forget(state)
            log.debug("job %d (%s) left memory", job_id, state.rec.name)

    def forget(self, state: JobState) -> None:
        """Drop a finished job from memory (it stays stored, or jobs.delete removes it)."""
        del self.jobs[state.id]
        for task in state.tasks:
            self.tasks.pop(task.id, None)
        if state.rec.status != JobStatus.COMPLETED and any(
            state.id in other.rec.depends_on for other in self.jobs.values()
        ):
            self.ended[state.id] = state.rec.status
        self.generation += 1

    def dependency_status(self, job_id: int) -> str | None:
        """The status of a job others depend on: in memory, or failed/canceled and gone; None
        for a job that completed and left memory, or does not exist (nothing to wait for)."""
        state = self.jobs.get(job_id)
        return state.rec.status if state is not None else self.ended.get(job_id)

    def may_dispatch_new(self, job: JobRecord) -> bool:
        """Whether a new job's tasks may be dispatched at once (not paused, no dependency
        left unfinished): the test of `dispatchable()` for a job not on the board yet."""
        if job.status != JobStatus.QUEUED:
            return False
        return not any(self._unfinished_dependency(dep) for dep in job.depends_on)

    # -- lookups -------------------------------------------------------------------------------
    def job(self, job_id: int) -> JobState:
        state = self.jobs.get(job_id)
        if state is None:
            raise not_found(f"no job {job_id}", "no_such_job")
        return state

    def task(self, task_id: int) -> TaskRecord:
        task = self.tasks.get(task_id)
        if task is None:
            raise not_found(f"no task {task_id}", "no_such_task")
        return task

    def running_on(self, worker: str) -> list[TaskRecord]:
        return [self.attempts[a] for a in self.load.get(worker, ()) if a in self.attempts]

    # -- the one way a task changes state ------------------------------------------------------
    def move(
        self, task: TaskRecord, event: str, *, hold_until: float | None = None, **changes: object
    ) -> None:
        """Apply `event` to `task` (TASK_TRANSITIONS), set `changes`, keep every index true.
        A task going back to the queue with `hold_until` (monotonic) waits until then."""
        old = TaskStatus(task.status)
        new = task_transition(task.status, event)
        state = self.jobs[task.job_id]
        if old in TASK_IN_FLIGHT and new not in TASK_IN_FLIGHT:
            self._release(task, state)
        state.held.pop(task.id, None)
        state.count_completed(task, -1)  # a completed task requeued gives its time back
        for name, value in changes.items():
            setattr(task, name, value)
        task.status = new
        state.count_completed(task, 1)
        state.note_times(task)
        state.counts[old] -= 1
        state.counts[new] += 1
        if new == TaskStatus.QUEUED:
            task.worker = None
            task.attempt = None
            task.progress = 0.0
            if hold_until is None:
                self._enqueue(state, task)
            else:
                self.hold(state, task, hold_until)
        elif new in TASK_IN_FLIGHT and task.attempt:
            self.attempts[task.attempt] = task
            self.load.setdefault(task.worker or "", set()).add(task.attempt)
            state.in_flight[task.id] = task
        if new == TaskStatus.COMPLETED:
            self.completed_total += 1
        log.debug("task %d (job %d) %s → %s (%s)", task.id, task.job_id, old, new, event)
        # Only a start is stored lazily: no one waits for it, and a crash before it is stored
        # leaves the task dispatched to the same worker, which reports it when back.
        self.journal.task_changed(task, urgent=event != "start")
        if self.events.has_subscribers("tasks"):
            self.events.publish("tasks", task_view(task, self.wall()))
        self.refresh_job(state)
        if state.rec.status in JOB_FINAL:
            self.settle(state)

    def _enqueue(self, state: JobState, task: TaskRecord) -> None:
        if not state.queue:
            self.generation += 1  # the job may have joined the dispatchable list
        heapq.heappush(state.queue, task.index)

    def hold(self, state: JobState, task: TaskRecord, until_mono: float) -> None:
        """Keep a queued task out of dispatch until `until_mono` (its retry delay)."""
        state.held[task.id] = until_mono
        heapq.heappush(self._held, (until_mono, state.id, task.id))

    def release_held(self, now_mono: float) -> int:
        """Put held tasks whose delay has passed back in their job's queue; how many."""
        released = 0
        while self._held and self._held[0][0] <= now_mono:
            until, job_id, task_id = heapq.heappop(self._held)
            state = self.jobs.get(job_id)
            if state is None or state.held.get(task_id) != until:
                continue  # dispatched, canceled or held again since
            del state.held[task_id]
            task = self.tasks[task_id]
            if task.status == TaskStatus.QUEUED:
                log.debug("task %d (job %d): retry delay over", task_id, job_id)
                self._enqueue(state, task)
                released += 1
        return released

    def next_release(self) -> float | None:
        """When the next held task is due (monotonic), None if none is held."""
        while self._held:
            until, job_id, task_id = self._held[0]
            state = self.jobs.get(job_id)
            if state is not None and state.held.get(task_id) == until:
                return until
            heapq.heappop(self._held)
        return None

    def _release(self, task: TaskRecord, state: JobState) -> None:
        state.in_flight.pop(task.id, None)
        if task.attempt is not None:
            self.attempts.pop(task.attempt, None)
            held = self.load.get(task.worker or "")
            if held is not None:
                held.discard(task.attempt)
                if not held:
                    del self.load[task.worker or ""]

    def refresh_job(self, state: JobState) -> None:
        """Recompute a job's status after its tasks changed (operator states stay put)."""
        job = state.rec
        if job.status in (JobStatus.PAUSED, JobStatus.CANCELED):
            return
        if job.status == JobStatus.FAILED and job.fail_policy == "fail_fast":
            return
        derived = state.derived_status()
        if derived != job.status:
            self.set_job_status(state, derived)

    def set_job_status(self, state: JobState, status: JobStatus) -> None:
        job = state.rec
        changed = job.status != status
        if changed:
            log.info("job %d (%s) %s → %s", job.id, job.name, job.status, status)
            job.status = status
            self.generation += 1
        self.job_changed(state)
        if changed and status in JOB_FINAL and self.events.has_subscribers(NOTICE_TOPIC):
            # job.completed, job.failed, job.canceled with the jobs.get view (a finished job
            # is never blocked).
            self.events.notify(
                f"job.{status.value}", {**job_view(state, self.wall()), "blocked": None}
            )
        if status in JOB_FINAL:
            self.settle(state)

    def set_priority(self, state: JobState, priority: int) -> bool:
        """True if the priority changed (the dispatch order may have too)."""
        if state.rec.priority == priority:
            return False
        log.info("job %d priority %d → %d", state.id, state.rec.priority, priority)
        state.rec.priority = priority
        self.generation += 1
        self.job_changed(state)
        return True

    def job_changed(self, state: JobState) -> None:
        state.rec.updated = self.wall()
        self.journal.job_changed(state.rec)
        self.publish_job(state)

    def publish_job(self, state: JobState) -> None:
        if self.events.has_subscribers("jobs"):
            self.events.publish("jobs", job_view(state, self.wall()))

    # -- dispatch support ----------------------------------------------------------------------
    def dispatchable(self) -> list[JobState]:
        """Jobs that may get a task now, best first: priority high to low, then oldest."""
        ready = []
        for state in self.jobs.values():
            job = state.rec
            if job.status in JOB_FINAL or job.status == JobStatus.PAUSED or not state.queue:
                continue
            if any(self._unfinished_dependency(dep) for dep in job.depends_on):
                continue
            ready.append(state)
        ready.sort(key=lambda state: (-state.rec.priority, state.rec.id))
        return ready

    def _unfinished_dependency(self, job_id: int) -> bool:
        status = self.dependency_status(job_id)
        return status is not None and status != JobStatus.COMPLETED

    def note_blocklist(self, state: JobState, worker: str) -> int:
        failures = state.blocklist.get(worker, 0) + 1
        state.blocklist[worker] = failures
        self.journal.blocklist_changed(BlocklistRecord(state.id, worker, failures))
        return failures

    def clear_blocklist(self, state: JobState) -> None:
        """Every worker may take the job's tasks again, also after a restart: each row is
        stored with 0 failures (load skips those)."""
        for worker in state.blocklist:
            self.journal.blocklist_changed(BlocklistRecord(state.id, worker, 0))
        state.blocklist.clear()


def _finished_and_idle(state: JobState) -> bool:
    return (
        state.rec.status in JOB_FINAL
        and not state.in_flight
        and not state.held
        and not state.counts[TaskStatus.QUEUED]
    )
