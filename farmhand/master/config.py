"""The master's settings: defaults, overridden by a TOML file (--config), overridden by flags;
and the checks of the TLS settings."""

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
    # The stale process report of a node offline this long is dropped (0 keeps it forever).
    procs_offline_ttl_s: float = 3600.0
    # Audit entries (every state-changing call) older than this are deleted (0 keeps them).
    audit_retention_days: float = 365.0
    shutdown_timeout_s: float = 5.0
    # PostgreSQL: the master lease's length. A standby takes over this long after the active
    # master froze (at once when it died or lost its connection); renewed every quarter of it.
    lease_s: float = 10.0
    # TLS on a second port (both dialects), beside the plain one; None: no TLS port. 0 = any.
    tls_port: int | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # A TLS peer must finish its handshake within this time, or its connection is closed.
    tls_handshake_timeout_s: float = 5.0
    # The MQTT broker farmhand publishes its state to (mqtt://HOST:PORT, mqtts://); None: none.
    mqtt: str | None = None
    # Pours closer together than this form one drinking session (Kegbot: 90 minutes).
    drink_session_gap_s: float = 5400.0
    # A folder of studio job templates (*.toml, docs/templates.md); None: the built-in ones only.
    templates_dir: Path | None = None
    # clients.prune without `offline_for_s` forgets clients offline longer than this (7 days).
    prune_offline_s: float = 7 * 86400.0

    @property
    def tls_enabled(self) -> bool:
        return self.tls_port is not None

    @property
    def heartbeat_timeout_s(self) -> float:
        return self.heartbeat_s * self.heartbeat_misses


PATH_SETTINGS = ("data_dir", "tls_cert", "tls_key", "templates_dir")


def check_tls_settings(config: MasterConfig) -> None:
    """ValueError unless the three TLS settings are all given or none is."""
    given = {
        "--tls-port": config.tls_port is not None,
        "--tls-cert": config.tls_cert is not None,
        "--tls-key": config.tls_key is not None,
    }
    if any(given.values()) and not all(given.values()):
        missing = ", ".join(flag for flag, present in given.items() if not present)
        raise ValueError(f"TLS needs --tls-port, --tls-cert and --tls-key together: add {missing}")
    if config.tls_port is not None and not 0 <= config.tls_port < 65536:
        raise ValueError(f"bad TLS port {config.tls_port}: expected 0-65535")
    if config.tls_port is not None and config.tls_port == config.port != 0:
        raise ValueError(f"--tls-port {config.tls_port} is the plain port too: pick another")
    if not config.tls_handshake_timeout_s > 0:
        raise ValueError("tls_handshake_timeout_s must be positive")


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
        if name in PATH_SETTINGS and isinstance(value, str):
            value = Path(value)
        elif name in PATH_SETTINGS:
            raise ValueError(f"config file {path}: {key} must be a path string, not {value!r}")
        elif name == "tls_port" and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError(f"config file {path}: {key} must be int, not {value!r}")
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
