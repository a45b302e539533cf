"""The console's command table. Each command is a thin face over one or more API methods:
it turns words into params, calls the method, and renders the result as text.

Each console module collects its own commands with `command = collector(COMMANDS)`;
farmhand/master/console/__init__.py assembles them from an explicit list of modules, which
mirrors the api's (the same concerns, the same module names).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from farmhand.master.console.shell import ConsoleConnection


@dataclass(frozen=True, slots=True)
class Reply:
    """What a command produced: the method's `result` (for --json) and its `text` rendering."""

    result: Any
    text: str


class UsageError(Exception):
    """The words typed do not fit the command; the message says how to use it."""


Runner = Callable[["ConsoleConnection", list[str]], Reply]


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    usage: str
    summary: str
    run: Runner
    # May run before a remote console has logged in.
    open: bool = False
    aliases: tuple[str, ...] = ()
    # The API methods it is a face of: `help COMMAND` shows their summaries and params.
    methods: tuple[str, ...] = ()
    # More lines `help COMMAND` shows after the summary (what its options mean).
    notes: tuple[str, ...] = ()


def collector(table: list[Command]) -> Callable[..., Callable[[Runner], Runner]]:
    """A decorator that appends a command to one module's own `table` (and nothing else)."""

    def command(
        name: str,
        usage: str,
        summary: str,
        *,
        aliases: tuple[str, ...] = (),
        open: bool = False,
        methods: tuple[str, ...] = (),
        notes: tuple[str, ...] = (),
    ) -> Callable[[Runner], Runner]:
        def collect(run: Runner) -> Runner:
            table.append(Command(name, usage, summary, run, open, aliases, methods, notes))
            return run

        return collect

    return command


def assemble(tables: Iterable[Iterable[Command]]) -> tuple[dict[str, Command], dict[str, str]]:
    """The commands by name and the aliases, from the modules' tables; a name or alias used
    twice is an error here, at import of the console package."""
    commands: dict[str, Command] = {}
    aliases: dict[str, str] = {}
    for table in tables:
        for entry in table:
            for name in (entry.name, *entry.aliases):
                if name in commands or name in aliases:
                    raise RuntimeError(f"console command {name} declared twice")
            commands[entry.name] = entry
            aliases.update(dict.fromkeys(entry.aliases, entry.name))
    return commands, aliases


# Ids and counts typed at the console; longer numbers are no id (and would not fit a field).
MAX_NUMBER_DIGITS = 18


def is_number(text: str) -> bool:
    """A whole number in ASCII digits ("¹" passes str.isdigit() but not int())."""
    return text.isascii() and text.isdigit() and len(text) <= MAX_NUMBER_DIGITS


def no_args(name: str, args: list[str]) -> None:
    if args:
        raise UsageError(f"{name} takes no arguments")
