"""Flags every program shares (SPEC §1): --log-level, --master/--key with their environment
variables, HOST:PORT parsing, and an argument parser that fails with one clear line and status 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import NoReturn

DEFAULT_MASTER = "127.0.0.1:6000"
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad flag prints one line (plus a pointer to --help) and exits with 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def parse_address(text: str, default_port: int = 6000) -> tuple[str, int]:
    """`HOST:PORT`, `HOST` or `[::1]:PORT` → (host, port); ValueError with a clear message."""
    text = text.strip()
    if not text:
        raise ValueError("empty address")
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        host, port_text = text, ""
    if not host:
        raise ValueError(f"no host in address {text!r}")
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"bad port in address {text!r}: expected 1-65535")
    return host, int(port_text)


def address_argument(text: str) -> tuple[str, int]:
    """argparse `type=` wrapper for parse_address."""
    try:
        return parse_address(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_logging_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log-level",
        default="info",
        type=str.lower,
        choices=LOG_LEVELS,
        help="how much to log to stderr (default: info)",
    )


def add_agent_flags(parser: argparse.ArgumentParser) -> None:
    """--master and --key, defaulting to FARMHAND_MASTER and FARMHAND_KEY."""
    parser.add_argument(
        "--master",
        type=address_argument,
        default=os.environ.get("FARMHAND_MASTER") or DEFAULT_MASTER,
        metavar="HOST:PORT",
        help="the master to connect to (env FARMHAND_MASTER; default %(default)s)",
    )
    parser.add_argument(
        "--key",
        default=os.environ.get("FARMHAND_KEY") or None,
        help="agent key from `keys.create` (env FARMHAND_KEY); not needed on loopback",
    )


def setup_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format=LOG_FORMAT, stream=sys.stderr)
    # peewee logs every statement at DEBUG: far too much even for --log-level debug.
    logging.getLogger("peewee").setLevel(max(logging.INFO, logging.getLogger().level))
