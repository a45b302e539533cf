"""Console: jobs, job, submit, cancel, pause, resume, requeue, priority, delete (the api's job
methods)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from farmhand.tables import format_duration, format_table, job_timing_text, plural

from .base import Command, Reply, UsageError, collector, is_number

if TYPE_CHECKING:
    from farmhand.master.console.shell import ConsoleConnection

COMMANDS: list[Command] = []
command = collector(COMMANDS)

BAR_WIDTH = 20
SUBMIT_USAGE = (
    "submit NAME [frames=1-250] [chunk=N] [priority=0-100] [tags=a,b] "
    "[max_attempts=N] [timeout=SECONDS] [retry_delay=SECONDS] [cwd=DIR] [after=ID,ID] "
    "[progress=REGEX] [on_failure=fail_fast|finish] -- ARGV…"
)
SUBMIT_NOTES = (
    "progress=REGEX reads a task's progress from its output (progress_regex below): a group "
    "named percent, frame (a frame number) or count (frames done, like ffmpeg's frame=); "
    "without it Blender's Fra:N and NN% are read",
    "retry_delay=SECONDS waits before a failed task's next attempt, doubling each time "
    "(default 10 s, at most 10 min; 0 retries at once)",
)


def progress_bar(percent: float) -> str:
    filled = round(percent / 100 * BAR_WIDTH)
    return f"[{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {percent:5.1f}%"


def _duration(seconds: float | None) -> str:
    return "-" if seconds is None else format_duration(seconds)


def job_id_of(args: list[str], usage: str) -> int:
    if len(args) != 1 or not is_number(args[0]):
        raise UsageError(f"usage: {usage}")
    return int(args[0])


@command(
    "jobs",
    "jobs [STATUS]",
    "list jobs, newest first, with progress bars",
    methods=("jobs.list",),
)
def jobs(console: ConsoleConnection, args: list[str]) -> Reply:
    if len(args) > 1:
        raise UsageError("usage: jobs [queued|active|paused|completed|failed|canceled]")
    params: dict[str, Any] = {"limit": 50}
    if args:
        params["status"] = args[0]
    result = console.call("jobs.list", params)
    rows = [
        [
            job["id"],
            job["name"],
            job["status"],
            job["priority"],
            progress_bar(job["progress"]),
            f"{job['tasks_by_status']['completed']}/{job['tasks_total']}",
            _duration(job.get("elapsed_s")),
            _duration(job.get("eta_s")),
        ]
        for job in result["jobs"]
    ]
    table = format_table(
        ["id", "name", "status", "prio", "progress", "tasks done", "elapsed", "eta"], rows
    )
    count = f"{len(rows)} of {plural(result['total'], 'job')}"
    text = f"{table}\n{count}" if rows else "no jobs"
    if result.get("history_unavailable"):
        text += "\n(the database is unavailable: finished jobs are not listed)"
    return Reply(result, text)


@command("job", "job ID", "one job in detail", methods=("jobs.get",))
def job(console: ConsoleConnection, args: list[str]) -> Reply:
    result = console.call("jobs.get", {"job_id": job_id_of(args, "job ID")})
    by_status = ", ".join(f"{n} {s}" for s, n in result["tasks_by_status"].items() if n)
    lines = [
        f"job {result['id']}: {result['name']}",
        f"  status:    {result['status']}  {progress_bar(result['progress'])}",
        f"  priority:  {result['priority']}   tags: {','.join(result['tags']) or '-'}",
        f"  argv:      {' '.join(result['argv'])}",
        f"  frames:    {result['frames'] or '-'} (chunk {result['chunk']})",
        f"  tasks:     {result['tasks_total']} ({by_status})",
        f"  timing:    {job_timing_text(result, _duration)}",
        f"  attempts:  up to {result['max_attempts']}, timeout "
        f"{result['timeout_s'] or 'none'}, on failure: {result['fail_policy']}",
        f"  created:   {result['created']}   updated: {result['updated']}",
    ]
    if result["depends_on"]:
        lines.append(f"  after:     {', '.join(map(str, result['depends_on']))}")
    if result.get("blocked"):
        lines.append(f"  blocked:   {result['blocked']}")
    return Reply(result, "\n".join(lines))


SUBMIT_OPTIONS: dict[str, tuple[str, Any]] = {
    "frames": ("frames", str),
    "chunk": ("chunk", int),
    "priority": ("priority", int),
    "tags": ("tags", lambda v: [t for t in v.split(",") if t]),
    "max_attempts": ("max_attempts", int),
    "timeout": ("timeout_s", float),
    "retry_delay": ("retry_delay_s", float),
    "cwd": ("cwd", str),
    "after": ("depends_on", lambda v: [int(i) for i in v.split(",") if i]),
    "progress": ("progress_regex", str),
    "on_failure": ("fail_policy", str),
}


@command(
    "submit",
    SUBMIT_USAGE,
    "submit a job: a command over a frame range",
    methods=("jobs.submit",),
    notes=SUBMIT_NOTES,
)
def submit(console: ConsoleConnection, args: list[str]) -> Reply:
    if "--" not in args:
        raise UsageError(f"usage: {SUBMIT_USAGE}")
    split = args.index("--")
    head, argv = args[:split], args[split + 1 :]
    if not head or not argv:
        raise UsageError(f"usage: {SUBMIT_USAGE}")
    params: dict[str, Any] = {"name": head[0], "argv": argv}
    for option in head[1:]:
        key, sep, value = option.partition("=")
        if not sep or key not in SUBMIT_OPTIONS:
            raise UsageError(
                f"unknown option {option!r}; options: " + ", ".join(f"{k}=" for k in SUBMIT_OPTIONS)
            )
        name, convert = SUBMIT_OPTIONS[key]
        try:
            params[name] = convert(value)
        except ValueError:
            raise UsageError(f"bad value for {key}: {value!r}") from None
    result = console.call("jobs.submit", params)
    return Reply(result, f"submitted job {result['job_id']} with {plural(result['tasks'], 'task')}")


def _job_action(verb: str, method: str, console: ConsoleConnection, args: list[str]) -> Reply:
    result = console.call(method, {"job_id": job_id_of(args, f"{verb} ID")})
    return Reply(result, f"job {result['id']} ({result['name']}) is now {result['status']}")


@command(
    "cancel",
    "cancel ID",
    "cancel a job: running tasks are killed",
    methods=("jobs.cancel",),
)
def cancel(console: ConsoleConnection, args: list[str]) -> Reply:
    return _job_action("cancel", "jobs.cancel", console, args)


@command(
    "pause",
    "pause ID",
    "pause a job: no new tasks; running ones finish",
    methods=("jobs.pause",),
)
def pause(console: ConsoleConnection, args: list[str]) -> Reply:
    return _job_action("pause", "jobs.pause", console, args)


@command("resume", "resume ID", "resume a paused job", methods=("jobs.resume",))
def resume(console: ConsoleConnection, args: list[str]) -> Reply:
    return _job_action("resume", "jobs.resume", console, args)


@command(
    "requeue",
    "requeue ID",
    "put a job's failed and canceled tasks back in the queue",
    methods=("jobs.requeue",),
)
def requeue(console: ConsoleConnection, args: list[str]) -> Reply:
    return _job_action("requeue", "jobs.requeue", console, args)


@command(
    "priority",
    "priority ID N",
    "set a job's priority (0-100, higher first)",
    methods=("jobs.set_priority",),
)
def priority(console: ConsoleConnection, args: list[str]) -> Reply:
    if len(args) != 2 or not is_number(args[0]) or not is_number(args[1]):
        raise UsageError("usage: priority ID N")
    result = console.call("jobs.set_priority", {"job_id": int(args[0]), "priority": int(args[1])})
    return Reply(result, f"job {result['id']} priority is now {result['priority']}")


@command(
    "delete",
    "delete ID",
    "delete a completed, failed or canceled job with its tasks and logs",
    methods=("jobs.delete",),
)
def delete(console: ConsoleConnection, args: list[str]) -> Reply:
    job_id = job_id_of(args, "delete ID")
    result = console.call("jobs.delete", {"job_id": job_id})
    return Reply(result, f"job {job_id} deleted")
