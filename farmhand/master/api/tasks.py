"""Task methods for people (list, log, requeue) and reports from workers (started, output,
progress, finished)."""

from __future__ import annotations

from typing import Any

from gevent.event import AsyncResult

from protocol.errors import ErrorCode, RpcError

from ..jobs.states import TASK_FINAL
from ..jobs.views import task_view
from ..params import Params
from ..registry import RuntimeClient
from ..services import Services
from ..session import Session
from .base import Access, method


@method("tasks.list", Access.READ)
def tasks_list(services: Services, session: Session, p: Params) -> dict[str, Any]:
    """A job's tasks in order (optionally a page of them: offset, limit)."""
    state = services.farm.board.job(p.integer("job_id"))
    offset = p.integer("offset", 0, minimum=0)
    limit = p.integer("limit", None, minimum=1)
    p.finish()
    chosen = state.tasks[offset:] if limit is None else state.tasks[offset : offset + limit]
    return {"tasks": [task_view(task) for task in chosen], "total": len(state.tasks)}


@method("tasks.log", Access.READ)
def tasks_log(services: Services, session: Session, p: Params) -> dict[str, Any]:
    """A task's log from a byte offset; `complete` once the task is over and all was read."""
    task = services.farm.board.task(p.integer("task_id"))
    offset = p.integer("offset", 0, minimum=0)
    limit = p.integer("limit", None, minimum=1)
    p.finish()
    chunk = services.farm.logs.read(task, offset, limit)
    complete = task.status in TASK_FINAL and chunk["next_offset"] >= chunk["size"]
    return {**chunk, "complete": complete}


@method("tasks.requeue", Access.ADMIN, writes=True)
def tasks_requeue(services: Services, session: Session, p: Params) -> dict[str, Any]:
    """Run one completed, failed or canceled task again."""
    task_id = p.integer("task_id")
    p.finish()
    return task_view(services.farm.requeue_task(task_id))


def _worker(session: Session) -> RuntimeClient:
    client = session.client
    if client is None or client.role != "worker":
        raise RpcError(ErrorCode.CONFLICT, "only a worker reports on tasks", "not_a_worker")
    return client


@method("task.started", Access.AGENT, agents=("worker",))
def task_started(services: Services, session: Session, p: Params) -> None:
    """Worker: the attempt's process is running."""
    attempt = p.text("attempt")
    p.integer("pid", None)
    p.finish()
    services.farm.task_started(_worker(session), attempt)


@method("task.output", Access.AGENT, agents=("worker",))
def task_output(services: Services, session: Session, p: Params) -> None:
    """Worker: output of the attempt's process, appended to the task log."""
    attempt = p.text("attempt")
    data = p.text("data", max_length=1 << 20)
    p.finish()
    services.farm.task_output(_worker(session), attempt, data)


@method("task.progress", Access.AGENT, agents=("worker",))
def task_progress(services: Services, session: Session, p: Params) -> None:
    """Worker: the attempt's progress in percent."""
    attempt = p.text("attempt")
    percent = p.number("percent", minimum=0, maximum=100)
    p.finish()
    services.farm.task_progress(_worker(session), attempt, percent)


@method("task.finished", Access.AGENT, agents=("worker",))
def task_finished(services: Services, session: Session, p: Params) -> AsyncResult:
    """Worker: the attempt ended. Answered once stored; -32009 if the attempt is stale."""
    attempt = p.text("attempt")
    exit_code = p.integer("exit_code", None)
    error = p.text("error", None)
    p.number("duration_s", None)
    p.finish()
    return services.farm.task_finished(_worker(session), attempt, exit_code, error)
