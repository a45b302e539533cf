"""The params of a `task.run` order, checked: what the master asks one task attempt to run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from protocol.errors import invalid_params


@dataclass(frozen=True, slots=True)
class TaskOrder:
    """The params of a `task.run` order, checked."""

    attempt: str
    task_id: int
    job_id: int
    argv: list[str]
    env: dict[str, str]
    cwd: str | None = None
    timeout_s: float | None = None
    progress_regex: str | None = None
    frame_start: int | None = None
    frame_end: int | None = None
    # A glob relative to cwd: the files the task writes, from which its preview is made.
    outputs: str | None = None

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> TaskOrder:
        """Raises RpcError(-32602) naming the first bad param."""
        attempt = params.get("attempt")
        if not isinstance(attempt, str) or not attempt:
            raise invalid_params("attempt must be a non-empty string")
        argv = params.get("argv")
        if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
            raise invalid_params("argv must be a non-empty list of strings")
        env = params.get("env") or {}
        if not isinstance(env, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in env.items()
        ):
            raise invalid_params("env must be an object of strings")
        timeout_s = params.get("timeout_s")
        if timeout_s is not None and (
            isinstance(timeout_s, bool) or not isinstance(timeout_s, int | float) or timeout_s <= 0
        ):
            raise invalid_params("timeout_s must be a positive number or null")
        return cls(
            attempt=attempt,
            task_id=_optional(params, "task_id", int) or 0,
            job_id=_optional(params, "job_id", int) or 0,
            argv=list(argv),
            env=dict(env),
            cwd=_optional(params, "cwd", str),
            timeout_s=None if timeout_s is None else float(timeout_s),
            progress_regex=_optional(params, "progress_regex", str),
            frame_start=_optional(params, "frame_start", int),
            frame_end=_optional(params, "frame_end", int),
            outputs=_optional(params, "outputs", str),
        )


def _optional(params: dict[str, Any], name: str, kind: type) -> Any:
    value = params.get(name)
    if value is not None and (isinstance(value, bool) or not isinstance(value, kind)):
        raise invalid_params(f"{name} must be {'an integer' if kind is int else 'a string'}")
    return value
