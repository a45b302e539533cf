"""`farmhand completion`: a bash completion script for the command names and each command's
flags, made from the parser itself. `source <(farmhand completion)` (or put it in
~/.local/share/bash-completion/completions/farmhand)."""

from __future__ import annotations

import argparse

from .base import EXIT_OK, Command, Context

SCRIPT = """_farmhand() {
    local cur="${COMP_WORDS[COMP_CWORD]}" command="" word
    for word in "${COMP_WORDS[@]:1:COMP_CWORD-1}"; do
        case "$word" in -*) ;; *) command="$word"; break ;; esac
    done
    case "$command" in
%(cases)s
        *) COMPREPLY=($(compgen -W "%(commands)s %(common)s" -- "$cur")) ;;
    esac
}
complete -o default -F _farmhand farmhand
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser  # no arguments


def script(parser: argparse.ArgumentParser) -> str:
    """The bash script for `parser` (main.build_parser())."""
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    common = " ".join(o for a in parser._actions for o in a.option_strings)
    cases = []
    for name, sub in subparsers.choices.items():
        flags = " ".join(o for a in sub._actions for o in a.option_strings)
        cases.append(f'        {name}) COMPREPLY=($(compgen -W "{flags}" -- "$cur")) ;;')
    return SCRIPT % {
        "cases": "\n".join(cases),
        "commands": " ".join(subparsers.choices),
        "common": common,
    }


def run(ctx: Context, args: argparse.Namespace) -> int:
    from .main import build_parser  # main imports this module: the table lists it

    print(script(build_parser()), end="", file=ctx.out)
    return EXIT_OK


COMMAND = Command(
    "completion",
    "print a bash completion script (commands and their flags)",
    add_arguments,
    run,
    examples=(
        "farmhand completion > ~/.local/share/bash-completion/completions/farmhand",
        "source <(farmhand completion)",
    ),
)
