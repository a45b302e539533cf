"""The master's settings: defaults, overridden by a TOML file (--config), overridden by flags."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from protocol.framing import DEFAULT_MAX_LINE_BYTES


@dataclass
class MasterConfig:
    host: str = "127.0.0.1"
    port: int = 6000
    data_dir: Path = Path("var")
    db: str | None = None
    require_key: bool = False
    heartbeat_s: float = 5.0
    # A client silent for this many heartbeat intervals is marked offline.
    heartbeat_misses: int = 3
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    # A console command is typed by a person: a few KB is plenty, and the small bound keeps
    # the work a line costs on the hub (shell-style splitting) small too.
    max_console_line_bytes: int = 4096
    max_connections: int = 20_000
    # Bytes queued for one peer before it counts as a slow consumer and is disconnected.
    send_queue_bytes: int = 16 << 20
    # How long a new connection may stay silent before it is taken for a console.
    dialect_wait_s: float = 0.2
    save_interval_s: float = 0.2
    # jobs.submit refuses a job that would have more tasks than this.
    max_tasks_per_job: int = 100_000
    # Task logs of jobs finished longer ago than this are deleted (0 keeps them forever).
    log_retention_days: float = 30.0
    # Audit entries (every state-changing call) older than this are deleted (0 keeps them).
    audit_retention_days: float = 365.0
    shutdown_timeout_s: float = 5.0

    @property
    def heartbeat_timeout_s(self) -> float:
        return self.heartbeat_s * self.heartbeat_misses


def load_config_file(path: Path) -> dict[str, Any]:
    """Reads the [master] table (or the top level) of a TOML file; ValueError on any problem."""
    try:
        with path.open("rb") as handle:
            document = tomllib.load(handle)
    except FileNotFoundError:
        raise ValueError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"config file {path}: {exc}") from None
    table = document.get("master", document)
    known = {field.name: field for field in fields(MasterConfig)}
    settings: dict[str, Any] = {}
    for key, value in table.items():
        name = key.replace("-", "_")
        if name not in known:
            raise ValueError(f"config file {path}: unknown setting {key!r}")
        default = getattr(MasterConfig(), name)
        if name == "data_dir":
            value = Path(value)
        elif isinstance(default, bool) != isinstance(value, bool) or (
            default is not None
            and not isinstance(value, type(default))
            and not (isinstance(default, float) and isinstance(value, int))
        ):
            raise ValueError(
                f"config file {path}: {key} must be {type(default).__name__}, not {value!r}"
            )
        settings[name] = value
    return settings
