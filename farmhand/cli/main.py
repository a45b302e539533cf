"""`farmhand [--master ADDR] [--key KEY] [--ca FILE] [--json] COMMAND …`: the farm from a shell
or a script, through the stdlib client (farmhand/client.py). The address, key and CA also come from
FARMHAND_MASTER, FARMHAND_KEY and FARMHAND_CA, or the user's config file
(~/.config/farmhand/config.toml, settings.py). Exit status: 0 done, 1 refused or failed (a job
that failed or was canceled, under `submit --wait`), 2 bad usage.

A command is one module with a `COMMAND` record; `COMMANDS` below is the whole table.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
from collections.abc import Sequence
from typing import Any

from farmhand.client import Client, MasterUnavailable, RpcError
from farmhand.options import DEFAULT_MASTER, ArgumentParser, ca_argument, parse_addresses
from protocol.version import SOFTWARE_VERSION

from . import (
    actions,
    alerts,
    call,
    clients,
    completion,
    control,
    delete,
    enable,
    job,
    jobs,
    log,
    submit,
    tasks,
    templates,
    watch,
    webhooks,
)
from .base import EXIT_FAILED, EXIT_USAGE, Command, Context, UsageError, to_json
from .settings import SettingsError, resolve

PROG = "farmhand"
COMMANDS: tuple[Command, ...] = (
    submit.COMMAND,
    jobs.COMMAND,
    job.COMMAND,
    tasks.COMMAND,
    log.COMMAND,
    watch.COMMAND,
    templates.COMMAND,
    clients.COMMAND,
    enable.ENABLE,
    enable.DISABLE,
    control.INSPECT,
    control.STOP,
    control.RESTART,
    control.SCHEDULE,
    control.PRUNE,
    actions.CANCEL,
    actions.PAUSE,
    actions.RESUME,
    actions.REQUEUE,
    actions.PRIORITY,
    delete.COMMAND,
    webhooks.COMMAND,
    call.COMMAND,
    alerts.COMMAND,
    completion.COMMAND,
)
# How long a command keeps trying to reach a master before it says none answers.
RECONNECT_S = 5.0


def common_flags() -> ArgumentParser:
    """The flags allowed before the command and after it (SUPPRESS: unset unless given)."""
    flags = ArgumentParser(add_help=False)
    flags.add_argument(
        "--master",
        default=argparse.SUPPRESS,
        metavar="ADDR",
        help=f"[tls://]HOST:PORT, or a comma-separated list (env FARMHAND_MASTER; default "
        f"{DEFAULT_MASTER})",
    )
    flags.add_argument("--key", default=argparse.SUPPRESS, help="api key (env FARMHAND_KEY)")
    flags.add_argument(
        "--ca",
        default=argparse.SUPPRESS,
        metavar="FILE",
        help="CA bundle that verifies a tls:// master (env FARMHAND_CA)",
    )
    flags.add_argument(
        "--config",
        default=argparse.SUPPRESS,
        metavar="FILE",
        help="settings file (env FARMHAND_CONFIG; default ~/.config/farmhand/config.toml)",
    )
    flags.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print results as JSON"
    )
    return flags


def build_parser() -> ArgumentParser:
    flags = common_flags()
    parser = ArgumentParser(
        prog=PROG,
        description="Drive a farmhand master: submit jobs, follow them, call any method.",
        parents=[flags],
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {SOFTWARE_VERSION}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        sub = commands.add_parser(
            command.name,
            help=command.summary,
            description=command.summary,
            parents=[flags],
            epilog="examples:\n" + "\n".join(f"  {line}" for line in command.examples),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        command.add_arguments(sub)
        sub.set_defaults(handler=command)
    return parser


def parse(parser: ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """argparse, except that what follows `--` is submit's ARGV, whatever it holds (argparse
    cannot give an optional positional everything after `--` once NAME is read)."""
    if "--" in argv:
        split = argv.index("--")
        args = parser.parse_args(argv[:split])
        if args.handler.name == "submit":
            args.argv = [*args.argv, *argv[split + 1 :]]
            return args
    return parser.parse_args(argv)


def make_client(parser: ArgumentParser, args: argparse.Namespace) -> Client:
    flags = {name: getattr(args, name, None) for name in ("master", "key", "ca", "config")}
    try:
        settings = resolve(flags, os.environ)
        addresses = parse_addresses(settings.master)
        ca = ca_argument(settings.ca) if settings.ca else None
    except (SettingsError, ValueError, argparse.ArgumentTypeError) as exc:
        parser.error(str(exc))
    return Client(
        [str(a) for a in addresses], settings.key, ca, name="farmhand-cli", reconnect_s=RECONNECT_S
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    words = list(sys.argv[1:] if argv is None else argv)
    head = words[: words.index("--")] if "--" in words else words
    if "--json" not in head:
        args = parse(parser, words)
        client = make_client(parser, args)
    else:  # bad usage (and a bad config file) too is a JSON error on stdout
        caught = io.StringIO()
        try:
            with contextlib.redirect_stderr(caught):
                args = parse(parser, words)
                client = make_client(parser, args)
        except SystemExit as exc:
            if exc.code == 0:
                raise
            message = caught.getvalue().strip().split(": error: ", 1)[-1]
            error = {"code": None, "message": message, "data": {"reason": "usage"}}
            print(to_json({"error": error}))
            return EXIT_USAGE
    command: Command = args.handler
    ctx = Context(client, as_json=getattr(args, "json", False))
    try:
        return command.run(ctx, args)
    except UsageError as exc:
        return fail(ctx, f"{PROG} {command.name}: error: {exc}", "usage", EXIT_USAGE)
    except RpcError as exc:
        return fail(ctx, f"{PROG} {command.name}: {exc.message}", exc.to_dict(), EXIT_FAILED)
    except MasterUnavailable as exc:
        return fail(ctx, f"{PROG}: {exc}", "master_unavailable", EXIT_FAILED)
    except TimeoutError as exc:
        return fail(ctx, f"{PROG}: {exc}", "timeout", EXIT_FAILED)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `farmhand log 12 -f | head`
        sys.stderr.close()
        return EXIT_FAILED
    finally:
        ctx.client.close()


def fail(ctx: Context, text: str, error: dict[str, Any] | str, status: int) -> int:
    """One line on stderr; with --json the error object on stdout (`{"error": …}`)."""
    if ctx.as_json:
        if isinstance(error, str):
            error = {"code": None, "message": text.split(": ", 1)[-1], "data": {"reason": error}}
        print(to_json({"error": error}), file=ctx.out)
    else:
        print(text, file=ctx.err)
    return status


if __name__ == "__main__":
    sys.exit(main())
