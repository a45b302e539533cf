"""What a task is given on this worker (docs/security.md, "Job policy"): the folder it runs in
and the environment it inherits. The master has refused what can never run; this is the
worker's own say, after symlinks are resolved and with the worker's flags (`--allow-cwd`,
`--allow-env`). A task the policy refuses ends as `cannot start: …` without being spawned.
"""

from __future__ import annotations

import fnmatch
import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from farmhand.worker.taskorder import TaskOrder

log = logging.getLogger(__name__)

# The worker's own environment that no task inherits: farmhand's settings and secrets
# (FARMHAND_KEY, FARMHAND_DB, which may hold a password, FARMHAND_MQTT_PASSWORD, …) and the
# systemd notify socket of the worker's unit (a task must not speak for the service).
STRIPPED_ENV = ("FARMHAND_*", "NOTIFY_SOCKET")
# Names a job's `env` may not set unless the worker allows them (`--allow-env`): they decide how
# every program is found and loaded (the dynamic loader, program lookup, glibc's gconv modules,
# the file every non-interactive bash runs first), which is the worker operator's business.
DENIED_ENV = ("LD_*", "PATH", "GCONV_PATH", "BASH_ENV")
# Set by the worker for each task, after the job's env: a job cannot override them.
TASK_ENV = (
    "FARMHAND_JOB_ID",
    "FARMHAND_TASK_ID",
    "FARMHAND_ATTEMPT",
    "FARMHAND_WORKER",
    "FARMHAND_FRAME_START",
    "FARMHAND_FRAME_END",
)


class TaskRefused(Exception):
    """The order asks for something this worker does not allow; the message says what."""


def inherited_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The part of the worker's environment a task inherits."""
    return {name: value for name, value in environ.items() if not _matches(name, STRIPPED_ENV)}


class TaskPolicy:
    def __init__(
        self,
        work_dir: Path,
        *,
        worker_name: str = "",
        allow_cwd: Iterable[Path] = (),
        allow_env: Iterable[str] = (),
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.work_dir = work_dir
        self.worker_name = worker_name
        # Resolved once: a root is compared with a cwd whose symlinks are resolved too.
        self.allow_cwd = tuple(Path(os.path.realpath(root)) for root in allow_cwd)
        self.allow_env = tuple(allow_env)
        self.base_env = inherited_env(os.environ if environ is None else environ)

    def cwd_for(self, cwd: str | None) -> str:
        """The real path the task runs in; TaskRefused, or NotADirectoryError if it is missing."""
        if cwd is None:
            self.work_dir.mkdir(parents=True, exist_ok=True)
            return str(self.work_dir)
        asked = Path(cwd)
        if asked.is_absolute():
            real = Path(os.path.realpath(asked))
            if not any(real.is_relative_to(root) for root in self.allow_cwd):
                roots = ", ".join(map(str, self.allow_cwd)) or "none"
                raise TaskRefused(
                    f"cwd {cwd} is outside the folders this worker allows "
                    f"(--allow-cwd: {roots}); a relative cwd runs inside its work dir"
                )
        else:
            # A relative cwd means a folder inside the work dir, not inside wherever we started,
            # and a symlink in it must not lead out of the work dir either.
            root = Path(os.path.realpath(self.work_dir))
            real = Path(os.path.realpath(root / asked))
            if not real.is_relative_to(root):
                raise TaskRefused(f"cwd {cwd} leaves the work dir {root} (it resolves to {real})")
        if not real.is_dir():
            raise NotADirectoryError(f"no such directory: {real}")
        return str(real)

    def env_for(self, order: TaskOrder) -> dict[str, str]:
        """The worker's environment without farmhand's own, the job's env, the task's variables."""
        denied = [
            name
            for name in order.env
            if _matches(name, DENIED_ENV) and not _matches(name, self.allow_env)
        ]
        if denied:
            raise TaskRefused(
                f"env {', '.join(sorted(denied))} may not be set by a job on this worker "
                f"(denied: {', '.join(DENIED_ENV)}; a worker allows names with --allow-env)"
            )
        env = {**self.base_env, **order.env}
        env.update(
            FARMHAND_JOB_ID=str(order.job_id),
            FARMHAND_TASK_ID=str(order.task_id),
            FARMHAND_ATTEMPT=order.attempt,
            FARMHAND_WORKER=self.worker_name,
        )
        if order.frame_start is not None and order.frame_end is not None:
            env.update(
                FARMHAND_FRAME_START=str(order.frame_start),
                FARMHAND_FRAME_END=str(order.frame_end),
            )
        else:
            for name in ("FARMHAND_FRAME_START", "FARMHAND_FRAME_END"):
                env.pop(name, None)
        return env


def _matches(name: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)
