"""Job methods: submit, templates, list, get, cancel, pause, resume, requeue, set_priority,
delete. Finished jobs are read from the database (farmhand/master/jobs/history.py)."""

from __future__ import annotations

from typing import Any

from gevent.event import AsyncResult

from ..jobs import history
from ..jobs.board import JobState
from ..jobs.states import JobStatus
from ..jobs.stranded import blocked_reason
from ..jobs.submit import SUBMIT_PARAMS, read_submission
from ..jobs.views import job_view
from ..services import Services
from ..session import Session
from .base import Access, Args, Method, collector, integer, integer_list, record_id, string

METHODS: list[Method] = []
method = collector(METHODS)


@method("jobs.submit", Access.ADMIN, writes=True, params=SUBMIT_PARAMS)
def jobs_submit(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """Submit a job: argv over a frame range, split into tasks. Answers once it is stored."""
    farm = services.farm
    spec = read_submission(
        p, history.KnownJobs(farm), services.config.max_tasks_per_job, services.templates
    )
    state = farm.submit(spec, services.clock.wall())
    return {"job_id": state.id, "tasks": len(state.tasks)}


@method("jobs.templates", Access.READ)
def jobs_templates(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """The job templates jobs.submit takes (`template`), each with its params."""
    return {"templates": services.templates.views()}


@method(
    "jobs.list",
    Access.READ,
    params=(
        string("status", "only jobs of this status", None, choices=JobStatus),
        integer("limit", "at most this many", 100, minimum=1, maximum=10_000),
        integer("offset", "skip this many first", 0, minimum=0),
    ),
)
def jobs_list(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """Jobs, newest first, optionally of one status; paginated with limit and offset."""
    status = p["status"]
    limit = p["limit"]
    offset = p["offset"]
    views, total, complete = history.list_jobs(
        services.farm, status, limit, offset, services.clock.wall()
    )
    if not complete:  # the database is unavailable: the jobs in memory, without the history
        return {"jobs": views, "total": total, "history_unavailable": True}
    return {"jobs": views, "total": total}


def _job(services: Services, p: Args) -> JobState:
    """The job a verb changes: loaded back into memory if it had left."""
    job_id = p["job_id"]
    return services.farm.job_for_change(job_id)


@method("jobs.get", Access.READ, params=(record_id("job_id", "the job's id"),))
def jobs_get(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """One job's view: status, progress, tasks by status, and `blocked`: why its queued tasks
    wait (no worker may run them, a dependency, a retry delay), or null."""
    state = history.view_job(services.farm, p["job_id"])
    view = job_view(state, services.clock.wall())
    view["blocked"] = blocked_reason(
        services.farm, state, services.registry.clients(), services.clock.mono()
    )
    return view


@method("jobs.cancel", Access.ADMIN, writes=True, params=(record_id("job_id", "the job's id"),))
def jobs_cancel(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """Cancel a job: queued tasks are dropped, running ones killed on their workers."""
    state = _job(services, p)
    services.farm.cancel(state)
    return job_view(state, services.clock.wall())


@method("jobs.pause", Access.ADMIN, writes=True, params=(record_id("job_id", "the job's id"),))
def jobs_pause(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """Pause a job: no new tasks are dispatched; running ones finish."""
    state = _job(services, p)
    services.farm.pause(state)
    return job_view(state, services.clock.wall())


@method("jobs.resume", Access.ADMIN, writes=True, params=(record_id("job_id", "the job's id"),))
def jobs_resume(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """Resume a paused job."""
    state = _job(services, p)
    services.farm.resume(state)
    return job_view(state, services.clock.wall())


@method("jobs.requeue", Access.ADMIN, writes=True, params=(record_id("job_id", "the job's id"),))
def jobs_requeue(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """Put a job's failed and canceled tasks back in the queue."""
    state = _job(services, p)
    services.farm.requeue(state)
    return job_view(state, services.clock.wall())


@method(
    "jobs.set_priority",
    Access.ADMIN,
    writes=True,
    params=(
        integer("priority", "0-100; higher goes first", minimum=0, maximum=100),
        record_id("job_id", "the job's id"),
    ),
)
def jobs_set_priority(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """Change a job's priority (0-100; higher goes first)."""
    state = _job(services, p)
    priority = p["priority"]
    services.farm.set_priority(state, priority)
    return job_view(state, services.clock.wall())


@method("jobs.delete", Access.ADMIN, writes=True, params=(record_id("job_id", "the job's id"),))
def jobs_delete(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """Delete a completed, failed or canceled job (else -32009) with its tasks and logs."""
    services.farm.delete(p["job_id"])
    return {}


@method("jobs.preview", Access.READ, params=(record_id("job_id", "the job's id"),))
def jobs_preview(services: Services, session: Session, p: Args) -> AsyncResult:
    """The newest thumbnail of the job's output: `{task_id, frame, content_type, width, height,
    data}` (`data` base64, at most 640 px wide); -32004 while there is none."""
    job_id = p["job_id"]
    return services.farm.previews.read(job_id)


@method(
    "jobs.previews",
    Access.READ,
    params=(
        integer_list("job_ids", "only these jobs (default: every job)", None),
        integer("limit", "at most this many", 50, minimum=1, maximum=1000),
    ),
)
def jobs_previews(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """Which jobs have a preview, newest first: `previews`: `{job_id, task_id, frame,
    content_type, width, height, version}` (no image data; `jobs.preview` has it)."""
    chosen = services.farm.previews.newest_of(p["job_ids"], p["limit"])
    return {"previews": [preview.view() for preview in chosen]}
