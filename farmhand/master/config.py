"""The master's settings: defaults, overridden by a TOML file (--config), overridden by flags;
and the checks of the TLS settings."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from protocol.framing import DEFAULT_MAX_LINE_BYTES

SMTP_PASSWORD_ENV = "FARMHAND_SMTP_PASSWORD"
EMAIL_EVENTS = ("job.completed", "job.failed")


@dataclass(frozen=True)
class EmailConfig:
    """The `[email]` table: SMTP mail for finished jobs (farmhand/master/webhooks/mail.py)."""

    host: str
    sender: str  # `from` in the TOML file
    to: tuple[str, ...]
    port: int = 25
    starttls: bool = False
    ssl: bool = False
    user: str | None = None
    password: str | None = None  # from FARMHAND_SMTP_PASSWORD, never from the file
    events: tuple[str, ...] = EMAIL_EVENTS
    timeout_s: float = 10.0


def parse_email_table(
    table: object, where: str, environ: Mapping[str, str] | None = None
) -> EmailConfig:
    """The `[email]` table of a config file; ValueError (one line) on any problem."""
    env = os.environ if environ is None else environ
    if not isinstance(table, dict):
        raise ValueError(f"{where}: [email] must be a table")
    known = {"host", "port", "from", "to", "starttls", "ssl", "user", "events", "timeout_s"}
    unknown = sorted(set(table) - known)
    if unknown:
        hint = (
            " (the password comes from $" + SMTP_PASSWORD_ENV + ")" if "password" in unknown else ""
        )
        raise ValueError(f"{where}: unknown [email] setting {unknown[0]!r}{hint}")
    host, sender, to = table.get("host"), table.get("from"), table.get("to")
    if not isinstance(host, str) or not host:
        raise ValueError(f'{where}: [email] needs host = "smtp.example.com"')
    if not isinstance(sender, str) or "@" not in sender:
        raise ValueError(f'{where}: [email] needs from = "farm@example.com"')
    recipients = [to] if isinstance(to, str) else to
    if (
        not isinstance(recipients, list)
        or not recipients
        or not all(isinstance(address, str) and "@" in address for address in recipients)
    ):
        raise ValueError(f"{where}: [email] needs to = an address or a list of addresses")
    port = table.get("port", 465 if table.get("ssl") else 25)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ValueError(f"{where}: [email] port must be 1-65535, not {port!r}")
    flags = {name: table.get(name, False) for name in ("starttls", "ssl")}
    for name, value in flags.items():
        if not isinstance(value, bool):
            raise ValueError(f"{where}: [email] {name} must be true or false, not {value!r}")
    if flags["starttls"] and flags["ssl"]:
        raise ValueError(f"{where}: [email] takes starttls or ssl, not both")
    user = table.get("user")
    if user is not None and not isinstance(user, str):
        raise ValueError(f"{where}: [email] user must be a string")
    events = table.get("events", list(EMAIL_EVENTS))
    if not isinstance(events, list) or not events or not set(events) <= set(EMAIL_EVENTS):
        raise ValueError(f"{where}: [email] events must be some of {', '.join(EMAIL_EVENTS)}")
    timeout_s = table.get("timeout_s", 10.0)
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, int | float) or timeout_s <= 0:
        raise ValueError(f"{where}: [email] timeout_s must be a positive number")
    return EmailConfig(
        host=host,
        sender=sender,
        to=tuple(recipients),
        port=port,
        starttls=flags["starttls"],
        ssl=flags["ssl"],
        user=user,
        password=env.get(SMTP_PASSWORD_ENV) if user else None,
        events=tuple(events),
        timeout_s=float(timeout_s),
    )


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
    # Finished jobs (completed, failed, canceled) unchanged this long are deleted with their
    # tasks and logs, checked hourly (0: kept until jobs.delete; the default).
    job_retention_days: float = 0.0
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
    # A failed webhook delivery is retried after this long, then twice as long each time.
    webhook_first_retry_s: float = 10.0
    # SMTP mail for finished jobs: the config file's [email] table; None: no email.
    email: EmailConfig | None = None
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
    table = dict(document.get("master", document))
    email = document.get("email") if "master" in document else table.pop("email", None)
    table.pop("email", None)
    known = {field.name: field for field in fields(MasterConfig)}
    settings: dict[str, Any] = {}
    if email is not None:
        settings["email"] = parse_email_table(email, f"config file {path}")
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
