"""What happens to attempts: the bodies of the farm's verbs for workers' reports (started,
output, progress, finished), failures and retries, cancels, and workers lost or reconciled.

Every report carries its attempt id, the fencing token of one dispatch. A report whose attempt
is not the task's current one (the task was requeued, canceled or given to another worker) is
stale: notifications are dropped, `task.finished` gets -32009 and changes nothing. Only
farmhand.master.jobs.farm calls these; everyone else calls the farm's verbs.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from gevent.event import AsyncResult

from models.jobstore import TaskRecord
from protocol.errors import conflict

from ..registry import RuntimeClient
from .board import BLOCKLIST_FAILURES, JobState
from .dispatcher import task_id_of
from .outcomes import Reason, describe, reported_reason
from .retries import retry_delay
from .states import TASK_IN_FLIGHT, JobStatus, TaskStatus
from .views import task_view

if TYPE_CHECKING:
    from .farm import JobFarm

log = logging.getLogger(__name__)


def _ignore_reply(result: Any, error: Any) -> None:
    return None


def current_task(farm: JobFarm, client: RuntimeClient, attempt: str) -> TaskRecord | None:
    task = farm.board.attempts.get(attempt)
    if task is None or task.worker != client.name:
        return None
    return task


# -- reports ---------------------------------------------------------------------------------
def started(farm: JobFarm, client: RuntimeClient, attempt: str) -> None:
    task = current_task(farm, client, attempt)
    if task is None:
        log.debug("stale task.started for attempt %s from %s", attempt, client.name)
        return
    farm.unconfirmed.pop(task.id, None)
    if task.status == TaskStatus.DISPATCHED:
        farm.board.move(task, "start", started=farm.wall())


def output(farm: JobFarm, client: RuntimeClient, attempt: str, data: str) -> None:
    task = current_task(farm, client, attempt)
    if task is None:
        log.debug("stale task.output for attempt %s from %s", attempt, client.name)
        return
    farm.logs.output(task, data)


def progress(farm: JobFarm, client: RuntimeClient, attempt: str, percent: float) -> None:
    task = current_task(farm, client, attempt)
    if task is None:
        return
    task.progress = max(0.0, min(100.0, percent))
    farm.journal.task_changed(task, urgent=False)  # stored with the next flush
    board = farm.board
    if board.events.has_subscribers("tasks"):
        board.events.publish("tasks", task_view(task, farm.wall()))
    board.publish_job(board.jobs[task.job_id])


def finished(
    farm: JobFarm,
    client: RuntimeClient,
    attempt: str,
    exit_code: int | None,
    error: str | None,
    reason: str | None = None,
) -> AsyncResult:
    """Record the outcome; the reply (an AsyncResult) resolves once it is committed.
    `reason` is the worker's (outcomes.WORKER_REASONS); without one it is read from the
    exit code and error."""
    task = current_task(farm, client, attempt)
    if task is None:
        # A finished job may have left memory: its task is then read back from the database.
        earlier = farm.board.tasks.get(task_id_of(attempt)) or _stored_task(farm, attempt)
        if (
            earlier is not None
            and earlier.attempt == attempt
            and earlier.worker == client.name
            and earlier.status == TaskStatus.COMPLETED
        ):
            # The same result again (the reply was lost): already stored, acknowledge it.
            # Only the attempt that completed its task; a canceled one's report is stale.
            return farm.journal.committed({})
        log.info("stale task.finished for attempt %s from %s refused", attempt, client.name)
        raise conflict(
            f"attempt {attempt} is stale: the task was requeued, canceled or "
            "given to another worker",
            "stale_attempt",
        )
    assert task.status in TASK_IN_FLIGHT
    now = farm.wall()
    farm.unconfirmed.pop(task.id, None)
    state = farm.board.jobs[task.job_id]
    began = task.started if task.started is not None else now
    why = reported_reason(exit_code, error, reason)
    line = "exit code 0" if why is None else describe(why, exit_code, error, state.rec.timeout_s)
    # The worker's own words too, where the line says it otherwise ("timeout after 3s").
    outcome = line if not error or error in line else f"{line} [worker: {error}]"
    ended = f"--- farmhand: attempt {attempt} ended:"
    # A task recovered after a restart may already hold this line (written, then the master
    # died before the commit, and the worker sent the result again).
    farm.logs.append(
        task,
        f"{ended} {outcome} after {now - began:.1f}s ---\n",
        unless=ended if task.id in farm.recovered else None,
    )
    farm.logs.close(task)
    if why is None:
        farm.board.move(
            task, "succeed", exit_code=0, error=None, reason=None, finished=now, progress=100.0
        )
    else:
        record_failure(farm, state, task, exit_code, line, now, reason=why)
    farm.dispatcher.wake()
    return farm.journal.committed({})


def order_undelivered(farm: JobFarm, task: TaskRecord, error: str) -> None:
    """The connection that carried a task.run ended before the worker answered it."""
    farm.logs.append(task, f"--- farmhand: {error} ---\n")
    farm.logs.close(task)
    record_failure(
        farm,
        farm.board.jobs[task.job_id],
        task,
        None,
        error,
        farm.wall(),
        reason=Reason.LOST,
        blocklist=False,
    )


# -- failures and cancels --------------------------------------------------------------------
def record_failure(
    farm: JobFarm,
    state: JobState,
    task: TaskRecord,
    exit_code: int | None,
    error: str,
    now: float,
    *,
    reason: Reason,
    blocklist: bool = True,
) -> None:
    """A failed attempt: counted; retried after the job's retry delay, or the task fails.
    `error` is its human line, `reason` why (outcomes.Reason). `blocklist` counts it against
    the worker too (not for an order that never arrived)."""
    worker = task.worker or "?"
    failures = farm.board.note_blocklist(state, worker) if blocklist else 0
    if failures == BLOCKLIST_FAILURES:
        log.warning(
            "worker %s failed %d tasks of job %d: blocklisted for that job",
            worker,
            failures,
            state.id,
        )
    attempts = task.attempts + 1
    changes: dict[str, Any] = {
        "attempts": attempts,
        "exit_code": exit_code,
        "error": error,
        "reason": reason,
        "finished": now,
    }
    if attempts < state.rec.max_attempts:
        delay_s = retry_delay(state.rec, attempts)
        log.info(
            "task %d failed on %s (%s): attempt %d of %d, retried in %.1fs",
            task.id,
            worker,
            error,
            attempts,
            state.rec.max_attempts,
            delay_s,
        )
        hold_until = farm.mono() + delay_s if delay_s > 0 else None
        farm.board.move(task, "retry", hold_until=hold_until, **changes)
        return
    log.warning("task %d failed on %s (%s): no attempts left", task.id, worker, error)
    farm.board.move(task, "fail", **changes)
    if state.rec.fail_policy == "fail_fast" and state.rec.status != JobStatus.CANCELED:
        fail_job(farm, state, f"task {task.index} failed {attempts} times")


def fail_job(farm: JobFarm, state: JobState, reason: str) -> None:
    """fail_fast: the job fails now; its other tasks are canceled (running ones killed)."""
    log.warning("job %d (%s) failed: %s", state.id, state.rec.name, reason)
    farm.board.set_job_status(state, JobStatus.FAILED)
    cancel_tasks(farm, state, f"job failed: {reason}")


def cancel_tasks(farm: JobFarm, state: JobState, reason: str) -> int:
    """Cancel every queued and in-flight task of a job; in-flight ones are killed."""
    canceled = 0
    for task in state.tasks:
        if task.status == TaskStatus.QUEUED:
            farm.board.move(task, "cancel", error=reason, reason=Reason.CANCELED)
        elif task.status in TASK_IN_FLIGHT:
            attempt, worker = task.attempt, farm.workers.get(task.worker or "")
            farm.board.move(
                task, "cancel", error=reason, reason=Reason.CANCELED, finished=farm.wall()
            )
            farm.logs.append(task, f"--- farmhand: canceled: {reason} ---\n")
            farm.logs.close(task)
            holder = worker or _online_client(farm, task.worker)
            if holder is not None and holder.connection is not None and attempt is not None:
                holder.connection.call_async("task.cancel", {"attempt": attempt}, _ignore_reply)
        else:
            continue
        canceled += 1
    if canceled:
        # The job's status changed before its tasks did: the last `jobs` event carries the
        # final counts, as jobs.list does (docs/events.md).
        farm.board.publish_job(state)
    return canceled


def _online_client(farm: JobFarm, name: str | None) -> RuntimeClient | None:
    # A disabled worker is not in farm.workers but may still run the task.
    client = farm.registry.get(name) if name else None
    return client if client is not None and client.online else None


# -- workers coming and going ----------------------------------------------------------------
def worker_lost(farm: JobFarm, client: RuntimeClient, why: str = "lost") -> None:
    """Its in-flight tasks go back to the queue, no attempt counted (`why`: lost, stopped…)."""
    lost = farm.board.running_on(client.name)
    for task in lost:
        farm.unconfirmed.pop(task.id, None)
        log.info(
            "task %d (attempt %s): worker %s %s; requeued without counting an attempt",
            task.id,
            task.attempt,
            client.name,
            why,
        )
        farm.board.move(task, "lose", error=f"worker {client.name} {why}", reason=Reason.LOST)
        farm.logs.append(task, f"--- farmhand: worker {client.name} {why} ---\n")
    if lost:
        farm.dispatcher.wake()


def reconcile_worker(farm: JobFarm, client: RuntimeClient, attempts: list[str]) -> None:
    """After a worker's hello: keep the tasks it still holds, requeue the others, and tell
    it to cancel attempts the master no longer wants."""
    held = set(attempts)
    for task in farm.board.running_on(client.name):
        farm.unconfirmed.pop(task.id, None)
        if task.attempt in held:
            log.info("task %d (attempt %s) confirmed on %s", task.id, task.attempt, client.name)
            continue
        farm.board.move(task, "lose", error=f"{client.name} no longer runs it", reason=Reason.LOST)
    mine = set(farm.board.load.get(client.name, ()))
    connection = client.connection
    if connection is None:
        farm.dispatcher.wake()
        return
    for attempt in held - mine:
        held_task = farm.board.attempts.get(attempt)
        if held_task is None and not _finished_here(farm, attempt, client.name):
            connection.call_async("task.cancel", {"attempt": attempt}, _ignore_reply)
    farm.dispatcher.wake()


def _finished_here(farm: JobFarm, attempt: str, worker: str) -> bool:
    """True if `attempt` is the one that completed its task (its result may be resent);
    a canceled task keeps its attempt id too, but that attempt must be canceled."""
    task = farm.board.tasks.get(task_id_of(attempt)) or _stored_task(farm, attempt)
    return (
        task is not None
        and task.attempt == attempt
        and task.worker == worker
        and task.status == TaskStatus.COMPLETED
    )


def _stored_task(farm: JobFarm, attempt: str) -> TaskRecord | None:
    task_id = task_id_of(attempt)
    return farm.history.task(task_id) if task_id >= 0 else None
