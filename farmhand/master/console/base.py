"""The console's command table. Each command is a thin face over one or more API methods:
it turns words into params, calls the method, and renders the result as text.
"""

from __future__ import annotations

from collections.abc import Callable
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


COMMANDS: dict[str, Command] = {}
ALIASES: dict[str, str] = {}


def command(
    name: str, usage: str, summary: str, *, aliases: tuple[str, ...] = (), open: bool = False
) -> Callable[[Runner], Runner]:
    def register(run: Runner) -> Runner:
        COMMANDS[name] = Command(name, usage, summary, run, open)
        for alias in aliases:
            ALIASES[alias] = name
        return run

    return register


def lookup(name: str) -> Command | None:
    return COMMANDS.get(ALIASES.get(name, name))


# Ids and counts typed at the console; longer numbers are no id (and would not fit a field).
MAX_NUMBER_DIGITS = 18


def is_number(text: str) -> bool:
    """A whole number in ASCII digits ("¹" passes str.isdigit() but not int())."""
    return text.isascii() and text.isdigit() and len(text) <= MAX_NUMBER_DIGITS


def no_args(name: str, args: list[str]) -> None:
    if args:
        raise UsageError(f"{name} takes no arguments")
