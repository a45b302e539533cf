"""Task methods for people (list, log, requeue) and reports from workers (started, output,
progress, finished)."""

from __future__ import annotations

from typing import Any

from gevent.event import AsyncResult

from protocol.errors import ErrorCode, RpcError

from ..jobs import history
from ..jobs.outcomes import WORKER_REASONS
from ..jobs.previews import decode_preview
from ..jobs.states import TASK_FINAL
from ..jobs.views import task_view
from ..registry import RuntimeClient
from ..services import Services
from ..session import Session
from .base import Access, Args, Method, collector, integer, number, record_id, string

METHODS: list[Method] = []
method = collector(METHODS)


@method(
    "tasks.list",
    Access.READ,
    params=(
        record_id("job_id", "the job's id"),
        integer("offset", "skip this many first", 0, minimum=0),
        integer("limit", "at most this many", None, minimum=1),
    ),
)
def tasks_list(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """A job's tasks in order (optionally a page of them: offset, limit)."""
    offset = p["offset"]
    limit = p["limit"]
    chosen, total = history.task_page(services.farm, p["job_id"], offset, limit)
    now = services.clock.wall()
    return {"tasks": [task_view(task, now) for task in chosen], "total": total}


@method(
    "tasks.log",
    Access.READ,
    params=(
        record_id("task_id", "the task's id"),
        integer("offset", "the byte offset to read from", 0, minimum=0),
        integer("limit", "at most this many bytes", None, minimum=1),
    ),
)
def tasks_log(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """A task's log from a byte offset; `complete` once the task is over and all was read."""
    task = history.find_task(services.farm, p["task_id"])
    offset = p["offset"]
    limit = p["limit"]
    chunk = services.farm.logs.read(task, offset, limit)
    complete = task.status in TASK_FINAL and chunk["next_offset"] >= chunk["size"]
    return {**chunk, "complete": complete}


@method("tasks.requeue", Access.ADMIN, writes=True, params=(record_id("task_id", "the task's id"),))
def tasks_requeue(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """Run one completed, failed or canceled task again."""
    task_id = p["task_id"]
    return task_view(services.farm.requeue_task(task_id), services.clock.wall())


def _worker(session: Session) -> RuntimeClient:
    client = session.client
    if client is None or client.role != "worker":
        raise RpcError(ErrorCode.CONFLICT, "only a worker reports on tasks", "not_a_worker")
    return client


@method(
    "task.started",
    Access.AGENT,
    agents=("worker",),
    params=(
        string("attempt", "the attempt's id"),
        integer("pid", "the task process's pid (checked, not kept)", None),
    ),
)
def task_started(services: Services, session: Session, p: Args) -> None:
    """Worker: the attempt's process is running."""
    attempt = p["attempt"]
    services.farm.task_started(_worker(session), attempt)


@method(
    "task.output",
    Access.AGENT,
    agents=("worker",),
    params=(
        string("attempt", "the attempt's id"),
        string("data", "output bytes as text", max_length=1 << 20),
    ),
)
def task_output(services: Services, session: Session, p: Args) -> None:
    """Worker: output of the attempt's process, appended to the task log."""
    attempt = p["attempt"]
    data = p["data"]
    services.farm.task_output(_worker(session), attempt, data)


@method(
    "task.progress",
    Access.AGENT,
    agents=("worker",),
    params=(
        string("attempt", "the attempt's id"),
        number("percent", "0-100", minimum=0, maximum=100),
    ),
)
def task_progress(services: Services, session: Session, p: Args) -> None:
    """Worker: the attempt's progress in percent."""
    attempt = p["attempt"]
    percent = p["percent"]
    services.farm.task_progress(_worker(session), attempt, percent)


@method(
    "task.finished",
    Access.AGENT,
    agents=("worker",),
    params=(
        string("attempt", "the attempt's id"),
        integer("exit_code", "the process's exit code (none if killed or never started)", None),
        string("error", "why it failed to run", None),
        number("duration_s", "how long it ran (checked, not kept)", None),
        string(
            "reason",
            "why it ended other than by success (none: it succeeded, or an older worker)",
            None,
            choices=WORKER_REASONS,
        ),
    ),
)
def task_finished(services: Services, session: Session, p: Args) -> AsyncResult:
    """Worker: the attempt ended. Answered once stored; -32009 if the attempt is stale."""
    attempt = p["attempt"]
    exit_code = p["exit_code"]
    error = p["error"]
    reason = p["reason"]
    return services.farm.task_finished(_worker(session), attempt, exit_code, error, reason)


@method(
    "task.preview",
    Access.AGENT,
    agents=("worker",),
    params=(
        record_id("task_id", "the task whose output it shows"),
        integer("frame", "the frame it shows", None),
        string("content_type", "image/jpeg or image/png"),
        integer("width", "in pixels (at most 640)"),
        integer("height", "in pixels (at most 640)"),
        # Bounded by decode_preview, which names the limit in bytes (-32013).
        string("data", "the image, base64 (at most 512 KiB of image)", max_length=1 << 21),
    ),
)
def task_preview(services: Services, session: Session, p: Args) -> AsyncResult:
    """Worker: a thumbnail of a finished task's newest output file; answered once stored."""
    worker = _worker(session)
    image = decode_preview(p["content_type"], p["width"], p["height"], p["data"])
    content = {"content_type": p["content_type"], "width": p["width"], "height": p["height"]}
    return services.farm.task_preview(worker, p["task_id"], p["frame"], {**content, "data": image})
