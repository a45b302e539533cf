"""Push dispatch: free slots of enabled, online workers get the best queued tasks.

`wake()` is called by every event that can make dispatch possible (a job submitted or resumed,
a task finished or requeued, a worker arriving or enabled); the loop then runs `run_once()`,
which hands out tasks round-robin across workers so a farm fills evenly. The best task for a
worker is the oldest queued task of the highest-priority eligible job whose tags the worker has,
whose dependencies are completed and which has not blocklisted the worker. A worker told to
stop or restart, or inside a window of its sleep schedule (at the wall time, the master's local
time), gets nothing; the safety tick wakes dispatch when a window ends.

Durable dispatch: an order leaves only once its dispatch record (task → dispatched, attempt id,
worker) is committed. `run_once` assigns a whole batch in memory, the journal's next flush
commits it in one transaction, and its after-commit callback sends the batch's `task.run`
orders. A master that dies at any point thus comes back knowing which worker holds which
attempt, and waits for that worker instead of running the task again.

A new job on an idle farm does not wait for a second commit: `plan_new_job` assigns its tasks
before the job is inserted, so the insert's own transaction carries their dispatch records,
and `send_planned` sends the orders right after that commit (one fsync from submit to start).
Slots are reserved meanwhile; a failed insert gives them back (`unplan`).

An order whose connection ends before the worker answered it counts as a failed attempt (it may
be what killed the connection, e.g. too large for the worker); an order the worker refused
(no free slot) is requeued without counting one.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from functools import partial
from typing import Any

import gevent
from gevent.event import Event

from models.jobstore import JobRecord, TaskRecord
from protocol.errors import RpcError
from protocol.frames import expand_argv

from ..ports import Peer
from ..registry import RuntimeClient, week_minute
from .board import JobBoard, JobState
from .outcomes import Reason
from .states import TaskStatus
from .stranded import may_take
from .tasklogs import TaskLogs

log = logging.getLogger(__name__)

# A worker that refused an order (no free slot) is skipped this long.
REFUSAL_COOLDOWN_S = 1.0
SAFETY_WAKE_S = 1.0

# (task, attempt id, worker, the connection it was assigned on, the task.run params)
Order = tuple[TaskRecord, str, RuntimeClient, Peer | None, dict[str, Any]]
# Called for an order whose connection ended before the worker answered: (task, error text).
UndeliveredHandler = Callable[[TaskRecord, str], None]


def new_attempt_id(task: TaskRecord) -> str:
    """`<task id>.<dispatch number>.<random>`: the fencing token of one dispatch."""
    # The random part tells apart two dispatches that share a number because the first one
    # was never stored before a crash; it needs no cryptographic strength.
    return f"{task.id}.{task.dispatches}.{random.getrandbits(24):06x}"


def task_id_of(attempt: str) -> int:
    """Attempt ids read `<task id>.<dispatch number>.<random>`."""
    head = attempt.split(".", 1)[0]
    # ASCII and short: a peer's "¹" or 5,000 digits must not make int() raise.
    return int(head) if head.isascii() and head.isdigit() and len(head) <= 18 else -1


class Dispatcher:
    def __init__(
        self,
        board: JobBoard,
        workers: dict[str, RuntimeClient],
        logs: TaskLogs,
        wall: Callable[[], float],
        mono: Callable[[], float],
        on_undelivered: UndeliveredHandler,
    ) -> None:
        self.board = board
        # name → runtime client of every online, enabled worker (kept by the farm)
        self.workers = workers
        self.logs = logs
        self.wall = wall
        self.mono = mono
        self.on_undelivered = on_undelivered
        self.dispatched_total = 0
        self.stopped = False
        # Plan a new job's dispatch into its insert (set by start(): the loop would dispatch
        # it right after the insert anyway; in-process tests run passes by hand instead).
        self.plans_new_jobs = False
        self._wanted = Event()
        self._jobs: list[JobState] = []
        self._generation = -1
        self._cooling: dict[str, float] = {}
        self._loop: gevent.Greenlet | None = None
        self._ticker: gevent.Greenlet | None = None

    def wake(self) -> None:
        self._wanted.set()

    def free_slots(self, worker: RuntimeClient) -> int:
        return worker.slots - len(self.board.load.get(worker.name, ()))

    def run_once(self, now_mono: float | None = None) -> int:
        """Assign every task that can go now; their orders leave once the assignments are
        committed. Returns how many were assigned."""
        now_mono = self.mono() if now_mono is None else now_mono
        self.board.release_held(now_mono)
        if self._generation != self.board.generation:
            self._jobs = self.board.dispatchable()
            self._generation = self.board.generation
        jobs = [state for state in self._jobs if state.queue]
        if not jobs:
            return 0
        batch = self._fill(jobs, now_mono, self._assign)
        if batch:
            self.board.journal.after_commit(lambda: self._send(batch))
        self.dispatched_total += len(batch)
        return len(batch)

    def _fill(
        self,
        jobs: list[JobState],
        now_mono: float,
        assign: Callable[[TaskRecord, RuntimeClient], Order],
    ) -> list[Order]:
        """Round-robin the tasks of `jobs` (best first) over the workers' free slots."""
        day, minute = week_minute(self.wall())  # local time, once per pass
        ready = [
            worker
            for worker in self.workers.values()
            if self.free_slots(worker) > 0
            and self._cooling.get(worker.name, 0.0) <= now_mono
            and worker.stopping is None
            and (worker.sleep is None or not worker.sleep.asleep(day, minute))
        ]
        ready.sort(key=lambda worker: -self.free_slots(worker) / max(worker.slots, 1))
        batch: list[Order] = []
        while ready:
            still_free = []
            for worker in ready:
                task = self._pick(worker, jobs)
                if task is None:
                    continue
                batch.append(assign(task, worker))
                if self.free_slots(worker) > 0:
                    still_free.append(worker)
            ready = still_free
        return batch

    # -- a new job on an idle farm: its dispatch records ride on its insert ---------------------
    def plan_new_job(self, job: JobRecord, tasks: list[TaskRecord]) -> list[Order]:
        """Before the insert: assign the new job's tasks if nothing else waits for a slot.
        The records are changed in place (dispatched, attempt, worker) and the workers' slots
        reserved; the job is not on the board yet. Returns the orders for `send_planned`."""
        if not self.plans_new_jobs or self.stopped or not self.workers:
            return []
        if not self.board.may_dispatch_new(job):
            return []
        if self._generation != self.board.generation:
            self._jobs = self.board.dispatchable()
            self._generation = self.board.generation
        if any(state.queue for state in self._jobs):
            return []  # others wait: the new job takes its turn in run_once
        state = JobState(job, tasks)
        batch = self._fill([state], self.mono(), partial(self._plan, job))
        if batch:
            job.status = JobState(job, tasks).derived_status()  # stored active, not queued
        return batch

    def _plan(self, job: JobRecord, task: TaskRecord, worker: RuntimeClient) -> Order:
        task.dispatches += 1
        task.status = TaskStatus.DISPATCHED
        task.worker = worker.name
        task.attempt = new_attempt_id(task)
        self.board.load.setdefault(worker.name, set()).add(task.attempt)
        return self._order(task, worker, job)

    def unplan(self, batch: list[Order]) -> None:
        """The insert failed: give the reserved slots back."""
        for _task, attempt, worker, _connection, _params in batch:
            held = self.board.load.get(worker.name)
            if held is not None:
                held.discard(attempt)
                if not held:
                    del self.board.load[worker.name]

    def send_planned(self, batch: list[Order]) -> None:
        """After the insert's commit (the job is on the board): log and send the orders; a
        task whose worker left meanwhile goes back to the queue."""
        self.dispatched_total += len(batch)
        now = self.wall()
        for task, attempt, worker, connection, _params in batch:
            self.logs.begin_attempt(task, attempt, worker.name, now)
            if connection is None or worker.connection is not connection or connection.closed:
                self.board.move(
                    task, "lose", error=f"worker {worker.name} lost", reason=Reason.LOST
                )
                self.wake()
        self._send(batch)

    def _pick(self, worker: RuntimeClient, jobs: list[JobState]) -> TaskRecord | None:
        for state in jobs:
            if not state.queue:
                continue
            if not may_take(state, worker):
                continue
            task = state.pop_queued()
            if task is not None:
                return task
        return None

    def _assign(self, task: TaskRecord, worker: RuntimeClient) -> Order:
        job = self.board.jobs[task.job_id].rec
        task.dispatches += 1
        attempt = new_attempt_id(task)
        self.board.move(
            task,
            "dispatch",
            attempt=attempt,
            worker=worker.name,
            started=None,
            finished=None,
            exit_code=None,
            error=None,
            reason=None,
            progress=0.0,
        )
        self.logs.begin_attempt(task, attempt, worker.name, self.wall())
        return self._order(task, worker, job)

    def _order(self, task: TaskRecord, worker: RuntimeClient, job: JobRecord) -> Order:
        attempt = task.attempt
        assert attempt is not None
        expand = partial(
            expand_argv, job=job.id, task=task.index, start=task.frame_start, end=task.frame_end
        )
        params = {
            "attempt": attempt,
            "task_id": task.id,
            "job_id": task.job_id,
            "argv": expand(job.argv),
            "env": job.env,
            "cwd": job.cwd,
            "timeout_s": job.timeout_s,
            "progress_regex": job.progress_regex,
            # The files the task writes (its preview is made from them), placeholders filled.
            "outputs": None if job.outputs is None else expand([job.outputs])[0],
            "frame_start": task.frame_start,
            "frame_end": task.frame_end,
        }
        log.debug("task %d (job %d) → %s as attempt %s", task.id, job.id, worker.name, attempt)
        return task, attempt, worker, worker.connection, params

    def _send(self, batch: list[Order]) -> None:
        """After the commit of the batch's dispatch records: send what is still wanted."""
        if self.stopped:
            return  # the records are stored; the next start recovers them
        for task, attempt, worker, connection, params in batch:
            if self.board.attempts.get(attempt) is not task:
                continue  # requeued (its worker left) or canceled meanwhile
            if connection is None or worker.connection is not connection or connection.closed:
                continue  # its worker is leaving: worker_lost requeues the task
            connection.call_async(
                "task.run", params, partial(self._on_reply, task, attempt, connection)
            )

    def _on_reply(
        self,
        task: TaskRecord,
        attempt: str,
        connection: Peer,
        result: Any,
        error: RpcError | None,
    ) -> None:
        if error is None or self.stopped:
            return
        if self.board.attempts.get(attempt) is not task:
            return
        worker = task.worker or "?"
        if error.reason == "offline":
            client = self.workers.get(worker)
            if client is not None and client.connection is not connection:
                return  # a new connection of the worker said hello: it settled this attempt
            log.warning(
                "task %d (attempt %s): %s disconnected before accepting the order; "
                "counted as a failed attempt",
                task.id,
                attempt,
                worker,
            )
            self.on_undelivered(task, f"{worker} disconnected before accepting the order")
            self.wake()
            return
        log.warning(
            "worker %s refused task %d (attempt %s): %s", worker, task.id, attempt, error.message
        )
        self._cooling[worker] = self.mono() + REFUSAL_COOLDOWN_S
        self.board.move(
            task,
            "lose",
            error=f"refused by {worker}: {error.message}",
            reason=Reason.CANNOT_START,
        )
        self.wake()

    def start(self) -> None:
        self.plans_new_jobs = True
        self._loop = gevent.spawn(self._run)
        self._ticker = gevent.spawn(self._tick)

    def stop(self) -> None:
        self.stopped = True
        for greenlet in (self._loop, self._ticker):
            if greenlet is not None:
                greenlet.kill()
        self._loop = self._ticker = None

    def _run(self) -> None:
        while True:
            due = self.board.next_release()
            timeout = None if due is None else max(0.0, due - self.mono())
            self._wanted.wait(timeout)
            self._wanted.clear()
            try:
                self.run_once()
            except Exception:
                log.exception("dispatch failed")
            gevent.sleep(0)

    def _tick(self) -> None:
        # A safety net: cooled-down workers and anything a missed wake-up left behind.
        while True:
            gevent.sleep(SAFETY_WAKE_S)
            self.wake()
