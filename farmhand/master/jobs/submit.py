"""jobs.submit: check every parameter, split the frames into tasks, build the records.

What can never run is refused here (docs/security.md, "Job policy"): a relative cwd that leaves
the work dir, NULs, bad env names, an argument or environment Linux's exec would refuse, and a
job whose `task.run` order could not reach a worker. Nothing here touches the database or the
board; the caller stores the records durably first, then adds them to the board.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping, Sequence
from typing import Any

from models.jobstore import JobRecord, TaskRecord
from protocol.errors import ErrorCode, RpcError, invalid_params, not_found
from protocol.frames import (
    MAX_FRAME,
    MAX_ID,
    check_argv,
    count_chunks,
    expand_argv_longest,
    parse_frames,
    split_chunks,
)
from protocol.framing import DEFAULT_MAX_LINE_BYTES
from protocol.jsonrpc import encode_request

from ..params import (
    Params,
    anything,
    integer,
    integer_list,
    mapping,
    number,
    rest,
    string,
    text_list,
)
from .retries import MAX_RETRY_DELAY_S
from .states import JobStatus, TaskStatus
from .templates import Catalog, JobFields

FAIL_POLICIES = ("fail_fast", "finish")
MAX_ATTEMPTS_LIMIT = 100
# Linux's exec refuses one argument or environment string this long or longer, counting its
# terminating NUL (MAX_ARG_STRLEN: 32 pages of 4 KiB).
MAX_ARG_STRLEN = 128 * 1024
# What a job's argv and env may take at exec, counted as the kernel counts against ARG_MAX
# (each string, its NUL, and a pointer): a quarter of the usual 2 MiB, which leaves the rest
# for the worker's own environment, which the master does not know.
MAX_EXEC_BYTES = 512 * 1024
POINTER_BYTES = 8
# An order must stay this far under the agents' line limit (DEFAULT_MAX_LINE_BYTES), so that a
# field the dispatcher adds later cannot push a job that passed this check over it.
ORDER_HEADROOM_BYTES = 1024


# jobs.submit's parameters, in the order they are checked (the method table declares them).
SUBMIT_PARAMS = (
    string("name", "the job's name", max_length=200),
    anything(
        "argv",
        "the command, a list of strings; `{frame}`, `{start}`, `{end}`, `{frames}`, "
        "`{task}`, `{job}` expand per task (required unless a template makes it)",
        None,
    ),
    string(
        "frames",
        "frames like `1-10,20,30-40` (empty: one task)",
        "",
        max_length=100_000,
    ),
    integer("chunk", "frames per task", 1, minimum=1, maximum=MAX_FRAME),
    integer("priority", "0-100; higher goes first", 50, minimum=0, maximum=100),
    text_list("tags", "only workers with these tags run it", []),
    integer(
        "max_attempts",
        "attempts per task before it fails",
        3,
        minimum=1,
        maximum=MAX_ATTEMPTS_LIMIT,
    ),
    number("timeout_s", "kill a task that runs longer", None, minimum=0.001),
    mapping("env", "environment variables for the tasks", {}),
    string("cwd", "the tasks' working directory", None, max_length=4096),
    integer_list("depends_on", "jobs that must complete first", []),
    string(
        "progress_regex",
        "a regex for progress in the output: a `percent`, `frame` (a frame number) or `count` "
        "(frames done, e.g. ffmpeg's `frame=`) group, else the first group, as a percent; "
        "templates set one",
        None,
        max_length=1000,
    ),
    string(
        "fail_policy",
        "`fail_fast` (a failed task fails the job) or `finish` (the others still run)",
        "fail_fast",
    ),
    number(
        "retry_delay_s",
        "seconds before a failed task's first retry, doubled for each later one up to 10 min "
        "(none: 10 s, 20 s, 40 s …; 0: retry at once)",
        None,
        minimum=0,
        maximum=MAX_RETRY_DELAY_S,
    ),
    string(
        "outputs",
        "a glob of the files a task writes, relative to its cwd (placeholders allowed)",
        None,
        max_length=4096,
    ),
    string("template", "a job template (jobs.templates) that makes the argv", None),
    rest(
        "template_params",
        "the template's own params, given beside these (or as this object)",
    ),
)


def read_submission(
    p: Mapping[str, Any],
    known_jobs: set[int] | Any,
    max_tasks: int,
    catalog: Catalog | None = None,
) -> dict[str, Any]:
    """The validated parameters of jobs.submit from its declared params `p`, read and type-checked
    by the method table (raises -32602/-32004 with a clear message).

    With `template`, that template reads its own params (the undeclared ones, in
    `template_params`) and makes the argv, and the outputs and progress regex unless given."""
    spec = dict(p)
    spec["frames"] = spec["frames"].strip()
    extra = Params("jobs.submit", spec.pop("template_params"))
    template_name = spec.pop("template")
    if template_name is not None:
        template = (catalog or Catalog.with_builtins()).get(template_name)
        made = template.expand(extra, JobFields(spec["frames"], spec["argv"]))
        spec["argv"] = made.argv
        spec["outputs"] = spec["outputs"] or made.outputs
        spec["progress_regex"] = spec["progress_regex"] or made.progress_regex
    extra.finish()  # without a template, or beyond its params: unknown
    if not spec["name"].strip():
        raise invalid_params("jobs.submit: name must not be empty", "bad_name")
    if spec["argv"] is None:
        raise invalid_params("jobs.submit: missing parameter 'argv'", "missing_param")
    spec["argv"] = check_argv(spec["argv"], has_frames=bool(spec["frames"]))
    if spec["outputs"] is not None:
        check_outputs(spec["outputs"], has_frames=bool(spec["frames"]))
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in spec["env"].items()):
        raise invalid_params("jobs.submit: env must map names to strings", "bad_env")
    check_env(spec["env"])
    check_cwd(spec["cwd"])
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
    spec["longest_argv"] = expand_argv_longest(spec["argv"], runs, count)
    outputs = spec["outputs"]
    spec["longest_outputs"] = (
        expand_argv_longest([outputs], runs, count)[0] if outputs is not None else None
    )
    # The frame with the most characters (a negative one may be longer than the last).
    ends = (runs[0][0], runs[-1][1]) if runs else ()
    spec["last_frame"] = max(ends, key=lambda frame: len(str(frame)), default=None)
    check_exec_size(spec["argv"], spec["longest_argv"], spec["env"])
    check_order_size(spec)
    return spec


def check_outputs(outputs: str, has_frames: bool) -> None:
    """A glob relative to the task's cwd (placeholders allowed), e.g. `render/*.png`."""
    if not outputs.strip():
        raise invalid_params("jobs.submit: outputs must not be empty", "bad_outputs")
    try:
        check_argv([outputs], has_frames)
    except RpcError as exc:
        raise invalid_params(f"jobs.submit: outputs: {exc.message}", "bad_outputs") from None


def check_env(env: dict[str, str]) -> None:
    """Names exec can pass on: not empty, no `=`, no NUL; values without NUL."""
    for name, value in env.items():
        if not name or "=" in name or "\0" in name:
            raise invalid_params(
                f"jobs.submit: env name {name!r} is not a valid name "
                "(it must not be empty, and may hold neither '=' nor a NUL)",
                "bad_env",
            )
        if "\0" in value:
            raise invalid_params(
                f"jobs.submit: env {name} contains a NUL byte, which no program can be given",
                "bad_env",
            )


def check_cwd(cwd: str | None) -> None:
    """A relative cwd names a folder inside the worker's work dir: `..` may not climb out of it.

    The worker checks again once symlinks are resolved; an absolute cwd is the worker's to
    allow (its --allow-cwd roots), so it passes here.
    """
    if cwd is None:
        return
    if "\0" in cwd:
        raise invalid_params("jobs.submit: cwd contains a NUL byte", "bad_cwd")
    if not cwd.startswith("/"):
        normal = posixpath.normpath(cwd)
        if normal == ".." or normal.startswith("../"):
            raise invalid_params(
                f"jobs.submit: cwd {cwd!r} leaves the worker's work dir: a relative cwd names "
                "a folder inside it (an absolute cwd must lie under a root the worker allows "
                "with --allow-cwd)",
                "cwd_escapes",
            )


def check_exec_size(argv: Sequence[str], longest: Sequence[str], env: dict[str, str]) -> None:
    """-32013 for what Linux's exec would refuse with E2BIG, whatever the worker."""
    for index, (arg, expanded) in enumerate(zip(argv, longest, strict=True)):
        size = len(expanded.encode()) + 1
        if size > MAX_ARG_STRLEN:
            filled = " once placeholders are filled in" if expanded != arg else ""
            raise _too_large(
                f"jobs.submit: argv[{index}] is {size - 1} bytes{filled}; Linux refuses an "
                f"argument of {MAX_ARG_STRLEN} bytes or more with its NUL (MAX_ARG_STRLEN): "
                "pass long data in a file",
                "arg_too_long",
                size,
                MAX_ARG_STRLEN,
            )
    for name, value in env.items():
        size = len(name.encode()) + len(value.encode()) + 2
        if size > MAX_ARG_STRLEN:
            raise _too_large(
                f"jobs.submit: env {name} is {size - 1} bytes as NAME=VALUE; Linux refuses an "
                f"environment string of {MAX_ARG_STRLEN} bytes or more with its NUL "
                "(MAX_ARG_STRLEN): pass long data in a file",
                "arg_too_long",
                size,
                MAX_ARG_STRLEN,
            )
    total = sum(len(arg.encode()) + 1 + POINTER_BYTES for arg in longest) + sum(
        len(name.encode()) + len(value.encode()) + 2 + POINTER_BYTES for name, value in env.items()
    )
    if total > MAX_EXEC_BYTES:
        raise _too_large(
            f"jobs.submit: argv and env take {total} bytes at exec (strings, NULs and pointers); "
            f"a job may use {MAX_EXEC_BYTES}, a quarter of Linux's usual 2 MiB ARG_MAX, so the "
            "worker's own environment fits beside them: pass long data in a file",
            "exec_too_large",
            total,
            MAX_EXEC_BYTES,
        )


def largest_order_bytes(spec: dict[str, Any]) -> int:
    """The length of the longest `task.run` line any task of this job can produce.

    The order has the fields the dispatcher sends, with every value at its longest: placeholders
    filled in with the job's largest frame and task index, ids and the request id at 64 bits.
    """
    last_frame = spec["last_frame"]
    order = {
        "attempt": f"{MAX_ID}.{MAX_ID}.ffffff",
        "task_id": MAX_ID,
        "job_id": MAX_ID,
        "argv": spec["longest_argv"],
        "env": spec["env"],
        "cwd": spec["cwd"],
        "timeout_s": spec["timeout_s"],
        "progress_regex": spec["progress_regex"],
        "outputs": spec.get("longest_outputs"),
        "frame_start": last_frame,
        "frame_end": last_frame,
    }
    return len(encode_request(MAX_ID, "task.run", order)) - 1  # the limit counts no newline


def check_order_size(spec: dict[str, Any]) -> None:
    """-32013 for a job whose orders could not be sent: an agent drops a connection whose line
    is over its limit, and the same order would come back after every reconnect."""
    size = largest_order_bytes(spec)
    limit = DEFAULT_MAX_LINE_BYTES - ORDER_HEADROOM_BYTES
    if size > limit:
        raise _too_large(
            f"jobs.submit: a task of this job needs a task.run order of {size} bytes, and "
            f"agents read lines of at most {DEFAULT_MAX_LINE_BYTES} bytes "
            f"({ORDER_HEADROOM_BYTES} kept spare): make argv or env smaller "
            "(JSON writes each control character as 6 bytes)",
            "order_too_large",
            size,
            limit,
        )


def _too_large(message: str, reason: str, size: int, limit: int) -> RpcError:
    return RpcError(ErrorCode.TOO_LARGE, message, reason, {"size": size, "limit": limit})


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
        outputs=spec["outputs"],
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
