"""Push dispatch: free slots of enabled, online workers get the best queued tasks.

`wake()` is called by every event that can make dispatch possible (a job submitted or resumed,
a task finished or requeued, a worker arriving or enabled); the loop then runs `run_once()`,
which hands out tasks round-robin across workers so a farm fills evenly. The best task for a
worker is the oldest queued task of the highest-priority eligible job whose tags the worker has,
whose dependencies are completed and which has not blocklisted the worker.

Durable dispatch: an order leaves only once its dispatch record (task → dispatched, attempt id,
worker) is committed. `run_once` assigns a whole batch in memory, the journal's next flush
commits it in one transaction, and its after-commit callback sends the batch's `task.run`
orders. A master that dies at any point thus comes back knowing which worker holds which
attempt, and waits for that worker instead of running the task again.

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

from models.jobstore import TaskRecord
from protocol.errors import RpcError
from protocol.frames import expand_argv

from ..ports import Peer
from ..registry import RuntimeClient
from .board import JobBoard, JobState
from .outcomes import Reason
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
        ready = [
            worker
            for worker in self.workers.values()
            if self.free_slots(worker) > 0 and self._cooling.get(worker.name, 0.0) <= now_mono
        ]
        ready.sort(key=lambda worker: -self.free_slots(worker) / max(worker.slots, 1))
        batch: list[Order] = []
        while ready:
            still_free = []
            for worker in ready:
                task = self._pick(worker, jobs)
                if task is None:
                    continue
                batch.append(self._assign(task, worker))
                if self.free_slots(worker) > 0:
                    still_free.append(worker)
            ready = still_free
        if batch:
            self.board.journal.after_commit(lambda: self._send(batch))
        self.dispatched_total += len(batch)
        return len(batch)

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
