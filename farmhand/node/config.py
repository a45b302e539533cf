"""agents.toml: which agents a node runs, loaded and checked with errors that name the line.

`[node]` holds defaults; each `[[agent]]` has a name, a program (`worker`, `hwagent` or an argv
list), flags (a table or a list), env, cwd and its restart policy. The node's --master and --key
are passed down: known programs run as `python -m farmhand.worker` (or `farmhand.hardware`) with
`--master` and `--name`; every child gets FARMHAND_MASTER and FARMHAND_KEY in its environment
(the key never goes on a command line, where `ps` shows it).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .rotating import DEFAULT_BACKUPS, DEFAULT_MAX_BYTES
from .states import RESTART_POLICIES, Policy

# Known programs: the module each name runs with the node's own interpreter (`python -m …`), so
# they start from wherever farmhand is, a checkout or an installed package.
PROGRAMS = {"worker": "farmhand.worker", "hwagent": "farmhand.hardware"}
# Agent names become client names and log file names: no slashes, spaces or globs.
AGENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@:+-]{0,199}")
TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")

# Keys shared by [node] (defaults) and [[agent]] (overrides), with their checks.
POLICY_KEYS: dict[str, tuple[type, float]] = {
    "start_secs": (float, 0.0),
    "start_retries": (int, 1),
    "backoff_initial_s": (float, 0.0),
    "backoff_max_s": (float, 0.0),
    "stop_timeout_s": (float, 0.0),
}
LOG_KEYS: dict[str, tuple[type, float]] = {"log_max_bytes": (int, 0), "log_backups": (int, 0)}
AGENT_KEYS = {"name", "program", "flags", "env", "cwd", "restart", *POLICY_KEYS, *LOG_KEYS}
NODE_KEYS = {"restart", *POLICY_KEYS, *LOG_KEYS}


class ConfigError(Exception):
    """A bad agents.toml: `str()` is one line, `path:line: message`."""

    def __init__(self, source: str, line: int | None, message: str) -> None:
        where = f"{source}:{line}" if line else source
        super().__init__(f"{where}: {message}")
        self.line = line
        self.message = message


@dataclass(frozen=True, slots=True)
class AgentSpec:
    name: str
    program: str  # "worker", "hwagent" or "argv"
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    cwd: str | None
    policy: Policy
    log_max_bytes: int = DEFAULT_MAX_BYTES
    log_backups: int = DEFAULT_BACKUPS
    # Where it was defined; not part of equality, so moving a table is not a change.
    line: int | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class NodeConfig:
    agents: tuple[AgentSpec, ...]
    log_max_bytes: int = DEFAULT_MAX_BYTES
    log_backups: int = DEFAULT_BACKUPS

    def names(self) -> list[str]:
        return [spec.name for spec in self.agents]


@dataclass(frozen=True, slots=True)
class Inheritance:
    """What the node passes down to every agent."""

    master: str  # [tls://]HOST:PORT
    key: str | None
    python: str  # the interpreter that runs the known programs
    ca: str | None = None  # the CA file that verifies a tls:// master (FARMHAND_CA)
    # PYTHONPATH for the known programs when farmhand is a checkout, not installed (None).
    pythonpath: str | None = None


def load_config(path: Path, inherit: Inheritance) -> NodeConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), None, f"cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), None, f"not UTF-8 text: {exc}") from None
    return parse_config(text, str(path), inherit)


def parse_config(text: str, source: str, inherit: Inheritance) -> NodeConfig:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = TOML_POSITION.search(message)
        if match is None and message.endswith("(at end of document)"):
            last = max(1, len(text.splitlines()))
            detail = message.removesuffix("(at end of document)").strip()
            raise ConfigError(
                source, last, f"bad TOML: {detail} at the end of the file (unclosed [ or quote?)"
            ) from None
        if match is None:
            raise ConfigError(source, None, f"bad TOML: {message}") from None
        line, column = match.groups()
        raise ConfigError(
            source, int(line), f"column {column}: bad TOML: {message[: match.start()]}"
        ) from None
    return _Checker(text, source, inherit).document(document)


class _Checker:
    def __init__(self, text: str, source: str, inherit: Inheritance) -> None:
        self.lines = text.splitlines()
        self.source = source
        self.inherit = inherit
        self.headers = [
            number
            for number, line in enumerate(self.lines, 1)
            if re.match(r"\s*\[\[\s*agent\s*\]\]", line)
        ]

    def fail(self, line: int | None, message: str) -> ConfigError:
        return ConfigError(self.source, line, message)

    def key_line(self, key: str, table_line: int | None) -> int | None:
        """The line of `key = …` in the table whose header is on table_line (None: the top)."""
        pattern = re.compile(rf"\s*(?:{re.escape(key)}|\"{re.escape(key)}\")\s*[=.]")
        for number in range((table_line or 0) + 1, len(self.lines) + 1):
            line = self.lines[number - 1]
            if re.match(r"\s*\[", line):
                break  # the next table's header ends this one
            if pattern.match(line):
                return number
        return table_line

    def document(self, document: dict[str, Any]) -> NodeConfig:
        for key in document:
            if key not in ("node", "agent"):
                raise self.fail(
                    self.key_line(key, None) or self._header_line(key),
                    f"unknown section {key!r}: expected [node] and [[agent]] tables",
                )
        node = document.get("node", {})
        node_line = self._header_line("node")
        if not isinstance(node, dict):
            raise self.fail(node_line, "[node] must be a table")
        self._check_keys(node, NODE_KEYS, node_line, "[node]")
        defaults = self._settings(node, {}, node_line, "[node]")
        agents = document.get("agent", [])
        if not isinstance(agents, list) or not all(isinstance(a, dict) for a in agents):
            raise self.fail(
                self.key_line("agent", None), "agents must be [[agent]] tables (an array of tables)"
            )
        specs: list[AgentSpec] = []
        seen: dict[str, int | None] = {}
        for index, table in enumerate(agents):
            line = self.headers[index] if index < len(self.headers) else None
            spec = self._agent(table, defaults, line, index + 1)
            if spec.name in seen:
                first = seen[spec.name]
                raise self.fail(
                    line,
                    f"duplicate agent name {spec.name!r}"
                    + (f" (first defined on line {first})" if first else ""),
                )
            seen[spec.name] = line
            specs.append(spec)
        return NodeConfig(
            agents=tuple(specs),
            log_max_bytes=defaults["log_max_bytes"],
            log_backups=defaults["log_backups"],
        )

    def _header_line(self, name: str) -> int | None:
        for number, line in enumerate(self.lines, 1):
            if re.match(rf"\s*\[\s*{re.escape(name)}\s*\]", line):
                return number
        return None

    def _check_keys(
        self, table: dict[str, Any], allowed: set[str], line: int | None, what: str
    ) -> None:
        for key in table:
            if key not in allowed:
                raise self.fail(
                    self.key_line(key, line),
                    f"{what}: unknown key {key!r} (known: {', '.join(sorted(allowed))})",
                )

    def _settings(
        self, table: dict[str, Any], defaults: dict[str, Any], line: int | None, what: str
    ) -> dict[str, Any]:
        """Policy and log settings: this table's values over the defaults."""
        base = {f.name: getattr(Policy(), f.name) for f in fields(Policy)}
        base.update(log_max_bytes=DEFAULT_MAX_BYTES, log_backups=DEFAULT_BACKUPS)
        settings = {**base, **defaults}
        for key, (kind, minimum) in {**POLICY_KEYS, **LOG_KEYS}.items():
            if key not in table:
                continue
            value = table[key]
            numeric = isinstance(value, int | float) and not isinstance(value, bool)
            if not numeric or (kind is int and not isinstance(value, int)) or value < minimum:
                expected = "a whole number" if kind is int else "a number"
                raise self.fail(
                    self.key_line(key, line), f"{what}: {key} must be {expected} >= {minimum:g}"
                )
            settings[key] = kind(value)
        if "restart" in table:
            if table["restart"] not in RESTART_POLICIES:
                raise self.fail(
                    self.key_line("restart", line),
                    f"{what}: restart must be one of {', '.join(RESTART_POLICIES)}, "
                    f"not {table['restart']!r}",
                )
            settings["restart"] = table["restart"]
        return settings

    def _agent(
        self, table: dict[str, Any], defaults: dict[str, Any], line: int | None, number: int
    ) -> AgentSpec:
        name = table.get("name")
        if name is None:
            raise self.fail(line, f'agent #{number} has no name (add name = "…")')
        what = f"agent {name!r}"
        if not isinstance(name, str) or not AGENT_NAME.fullmatch(name):
            raise self.fail(
                self.key_line("name", line),
                f"agent #{number}: bad name {name!r}: 1-200 letters, digits and ._@:+- "
                "starting with a letter or digit",
            )
        self._check_keys(table, AGENT_KEYS, line, what)
        settings = self._settings(table, defaults, line, what)
        argv, program = self._argv(table, name, line, what)
        env = table.get("env", {})
        if not isinstance(env, dict) or not all(
            isinstance(v, str | int | float) and not isinstance(v, bool) for v in env.values()
        ):
            raise self.fail(self.key_line("env", line), f"{what}: env must be a table of strings")
        cwd = table.get("cwd")
        if cwd is not None and not isinstance(cwd, str):
            raise self.fail(self.key_line("cwd", line), f"{what}: cwd must be a string")
        inherited = {"FARMHAND_MASTER": self.inherit.master}
        if self.inherit.key:
            inherited["FARMHAND_KEY"] = self.inherit.key
        if self.inherit.ca:
            inherited["FARMHAND_CA"] = self.inherit.ca
        if program != "argv":
            inherited["PYTHONUNBUFFERED"] = "1"  # so its output reaches the log as it happens
            if self.inherit.pythonpath:
                inherited["PYTHONPATH"] = self.inherit.pythonpath
        merged = {**inherited, **{k: str(v) for k, v in env.items()}}
        policy = Policy(**{f.name: settings[f.name] for f in fields(Policy)})
        return AgentSpec(
            name=name,
            program=program,
            argv=tuple(argv),
            env=tuple(sorted(merged.items())),
            cwd=cwd,
            policy=policy,
            log_max_bytes=settings["log_max_bytes"],
            log_backups=settings["log_backups"],
            line=line,
        )

    def _argv(
        self, table: dict[str, Any], name: str, line: int | None, what: str
    ) -> tuple[list[str], str]:
        program = table.get("program")
        flags = self._flags(table.get("flags", []), line, what)
        if isinstance(program, list):
            if not program or not all(isinstance(word, str) and word for word in program):
                raise self.fail(
                    self.key_line("program", line),
                    f"{what}: an argv program must be a non-empty list of strings",
                )
            return [*program, *flags], "argv"
        if program is None:
            raise self.fail(line, f"{what} has no program (worker, hwagent or an argv list)")
        if program not in PROGRAMS:
            raise self.fail(
                self.key_line("program", line),
                f"{what}: unknown program {program!r}: expected "
                + ", ".join(repr(p) for p in PROGRAMS)
                + ' or an argv list such as ["python3", "tool.py"]',
            )
        given = {flag.split("=", 1)[0] for flag in flags if flag.startswith("--")}
        argv = [self.inherit.python, "-m", PROGRAMS[program]]
        if "--master" not in given:
            argv += ["--master", self.inherit.master]
        if "--name" not in given:
            argv += ["--name", name]  # the agent's client name defaults to its name here
        return [*argv, *flags], program

    def _flags(self, flags: Any, line: int | None, what: str) -> list[str]:
        """A list is used as is; a table `{slots = 2, work_dir = "x", verbose = true}` becomes
        `--slots 2 --work-dir x --verbose` (false omits a flag, a list is comma-joined)."""
        if isinstance(flags, list):
            if not all(isinstance(flag, str) for flag in flags):
                raise self.fail(self.key_line("flags", line), f"{what}: flags must be strings")
            return list(flags)
        if not isinstance(flags, dict):
            raise self.fail(
                self.key_line("flags", line), f"{what}: flags must be a table or a list"
            )
        argv: list[str] = []
        for key, value in flags.items():
            flag = "--" + key.replace("_", "-")
            if value is True:
                argv.append(flag)
            elif value is False:
                continue
            elif isinstance(value, list):
                argv += [flag, ",".join(str(item) for item in value)]
            elif isinstance(value, str | int | float):
                argv += [flag, str(value)]
            else:
                raise self.fail(
                    self.key_line("flags", line), f"{what}: flag {key!r} has an unusable value"
                )
        return argv
