"""jobs.submit: check every parameter, split the frames into tasks, build the records.

Nothing here touches the database or the board; the caller stores the records durably first,
then adds them to the board (an acknowledged submission is never lost).
"""

from __future__ import annotations

import re
from typing import Any

from models.jobstore import JobRecord, TaskRecord
from protocol.errors import invalid_params, not_found
from protocol.frames import check_argv, count_chunks, parse_frames, split_chunks

from ..params import Params
from .retries import MAX_RETRY_DELAY_S
from .states import JobStatus, TaskStatus

FAIL_POLICIES = ("fail_fast", "finish")
MAX_ATTEMPTS_LIMIT = 100


def read_submission(p: Params, known_jobs: set[int] | Any, max_tasks: int) -> dict[str, Any]:
    """The validated parameters of jobs.submit (raises -32602/-32004 with a clear message)."""
    spec = {
        "name": p.text("name", max_length=200),
        "argv": p.raw("argv", None),
        "frames": p.text("frames", "", max_length=100_000).strip(),
        "chunk": p.integer("chunk", 1, minimum=1),
        "priority": p.integer("priority", 50, minimum=0, maximum=100),
        "tags": p.text_list("tags", []),
        "max_attempts": p.integer("max_attempts", 3, minimum=1, maximum=MAX_ATTEMPTS_LIMIT),
        "timeout_s": p.number("timeout_s", None, minimum=0.001),
        "env": p.mapping("env", {}),
        "cwd": p.text("cwd", None, max_length=4096),
        "depends_on": p.integer_list("depends_on", []),
        "progress_regex": p.text("progress_regex", None, max_length=1000),
        "fail_policy": p.text("fail_policy", "fail_fast"),
        "retry_delay_s": p.number("retry_delay_s", None, minimum=0, maximum=MAX_RETRY_DELAY_S),
    }
    p.finish()
    if not spec["name"].strip():
        raise invalid_params("jobs.submit: name must not be empty", "bad_name")
    if spec["argv"] is None:
        raise invalid_params("jobs.submit: missing parameter 'argv'", "missing_param")
    spec["argv"] = check_argv(spec["argv"], has_frames=bool(spec["frames"]))
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in spec["env"].items()):
        raise invalid_params("jobs.submit: env must map names to strings", "bad_env")
    if spec["fail_policy"] not in FAIL_POLICIES:
        raise invalid_params(
            f"jobs.submit: fail_policy must be one of {', '.join(FAIL_POLICIES)}", "bad_policy"
        )
    if spec["progress_regex"] is not None:
        try:
            re.compile(spec["progress_regex"])
        except re.error as exc:
            raise invalid_params(f"jobs.submit: bad progress_regex: {exc}", "bad_regex") from None
    for job_id in spec["depends_on"]:
        if job_id not in known_jobs:
            raise not_found(f"jobs.submit: depends_on names unknown job {job_id}", "no_such_job")
    runs = parse_frames(spec["frames"]) if spec["frames"] else []
    count = count_chunks(runs, spec["chunk"]) if runs else 1
    if count > max_tasks:
        raise invalid_params(
            f"jobs.submit: {count} tasks is more than the limit of {max_tasks} "
            "(use a larger chunk or split the job)",
            "too_many_tasks",
        )
    spec["chunks"] = split_chunks(runs, spec["chunk"]) if runs else [(None, None)]
    return spec


def build_records(
    spec: dict[str, Any], job_id: int, first_task_id: int, now: float
) -> tuple[JobRecord, list[TaskRecord]]:
    chunks = spec["chunks"]
    job = JobRecord(
        id=job_id,
        name=spec["name"],
        status=JobStatus.QUEUED,
        priority=spec["priority"],
        argv=spec["argv"],
        frames=spec["frames"],
        chunk=spec["chunk"],
        tags=spec["tags"],
        max_attempts=spec["max_attempts"],
        timeout_s=spec["timeout_s"],
        env=spec["env"],
        cwd=spec["cwd"],
        depends_on=spec["depends_on"],
        progress_regex=spec["progress_regex"],
        fail_policy=spec["fail_policy"],
        created=now,
        updated=now,
        tasks_total=len(chunks),
        retry_delay_s=spec["retry_delay_s"],
    )
    tasks = [
        TaskRecord(
            id=first_task_id + index,
            job_id=job_id,
            index=index,
            frame_start=start,
            frame_end=end,
            status=TaskStatus.QUEUED,
            worker=None,
            attempt=None,
            attempts=0,
            dispatches=0,
            exit_code=None,
            error=None,
            progress=0.0,
            started=None,
            finished=None,
        )
        for index, (start, end) in enumerate(chunks)
    ]
    return job, tasks
