"""Flags and addresses every program shares: --log-level, --version, --master/--key/--ca with
their environment variables, `[tls://]HOST:PORT` (and comma-separated lists of them) parsed into
MasterAddress values, when a key would travel in clear, one-line descriptions of TLS failures,
an argument parser that fails with one clear line and status 2, and the name a program goes by.
Standard library only: the stdlib client (farmhand/client.py) uses it too.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import socket
import ssl
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from protocol.version import SOFTWARE_VERSION

DEFAULT_MASTER = "127.0.0.1:6000"
TLS_SCHEME = "tls://"
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad flag prints one line (plus a pointer to --help) and exits with 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


@dataclass(frozen=True)
class MasterAddress:
    """Where a master listens: `HOST:PORT`, or `tls://HOST:PORT` when the link is TLS."""

    host: str
    port: int
    tls: bool = False

    @property
    def hostport(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def __str__(self) -> str:
        return f"{TLS_SCHEME}{self.hostport}" if self.tls else self.hostport


class MasterList(tuple[MasterAddress, ...]):
    """One or more masters (standby masters), tried in turn; str() gives the comma list back."""

    def __str__(self) -> str:
        return ",".join(str(address) for address in self)

    @classmethod
    def of(cls, masters: MasterAddress | Sequence[MasterAddress]) -> MasterList:
        if isinstance(masters, MasterAddress):
            return cls((masters,))
        if not masters:
            raise ValueError("no master address")
        return cls(masters)


def parse_address(text: str, default_port: int = 6000) -> MasterAddress:
    """`HOST:PORT`, `HOST`, `[::1]:PORT`, each optionally prefixed by `tls://`; ValueError with
    a clear message otherwise."""
    text = text.strip()
    tls = text.lower().startswith(TLS_SCHEME)
    if tls:
        text = text[len(TLS_SCHEME) :]
    elif "://" in text:
        scheme = text.split("://", 1)[0]
        raise ValueError(f"unknown scheme {scheme!r}: use HOST:PORT or tls://HOST:PORT")
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
        return MasterAddress(host, default_port, tls)
    if not (port_text.isascii() and port_text.isdigit()) or not 0 < int(port_text) < 65536:
        raise ValueError(f"bad port in address {text!r}: expected 1-65535")
    return MasterAddress(host, int(port_text), tls)


def parse_addresses(text: str, default_port: int = 6000) -> list[MasterAddress]:
    """A comma-separated list of addresses (standby masters, tried in turn); ValueError when
    one of them is bad or the list is empty."""
    parts = [part for part in text.split(",") if part.strip()]
    if not parts:
        raise ValueError("empty address")
    return [parse_address(part, default_port) for part in parts]


def key_in_clear(address: MasterAddress, sock: Any) -> bool:
    """True when a key sent on `sock` would cross a network unencrypted: plain TCP to a peer
    that is not on this machine."""
    if address.tls:
        return False
    try:
        peer = sock.getpeername()[0]
    except OSError:
        return True
    return not is_loopback(peer)


def is_loopback(host: str) -> bool:
    try:
        ip = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def describe_tls_error(exc: ssl.SSLError) -> str:
    """One line for the log: why the TLS connection failed, and what to check."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            f"TLS: the master's certificate is not trusted: {exc.verify_message} "
            "(check --ca / FARMHAND_CA and that the host name is in the certificate)"
        )
    reason = exc.reason or str(exc)
    if reason in ("WRONG_VERSION_NUMBER", "UNEXPECTED_EOF_WHILE_READING") or "EOF" in reason:
        return f"TLS handshake failed ({reason}): is this the master's TLS port (--tls-port)?"
    return f"TLS handshake failed: {reason}"


def address_argument(text: str) -> MasterAddress:
    """argparse `type=` wrapper for parse_address."""
    try:
        return parse_address(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def master_list_argument(text: str) -> MasterList:
    """argparse `type=` for --master: one address or a comma-separated list of them."""
    try:
        return MasterList(parse_addresses(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def ca_argument(text: str) -> Path:
    """argparse `type=` for --ca: a PEM file of CA certificates that loads."""
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"CA file {text} does not exist")
    try:
        ssl.create_default_context(cafile=text)
    except (ssl.SSLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise argparse.ArgumentTypeError(f"CA file {text}: {reason}") from None
    return path


def add_logging_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log-level",
        default="info",
        type=str.lower,
        choices=LOG_LEVELS,
        help="how much to log to stderr (default: info)",
    )


def add_version_flag(parser: argparse.ArgumentParser) -> None:
    """--version: `PROG VERSION` on stdout, exit 0."""
    parser.add_argument(
        "--version",
        action="version",
        version=f"%(prog)s {SOFTWARE_VERSION}",
        help="print the version and exit",
    )


def program_name(script: str, console_script: str) -> str:
    """The name a program's usage and error lines give: `console_script` (`farmhand-master`)
    when it was started as the installed command, else `script` (`master.py`, also for
    `python -m farmhand.master`)."""
    started_as = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    return console_script if started_as == console_script else script


def add_agent_flags(parser: argparse.ArgumentParser) -> None:
    """--master and --key, defaulting to FARMHAND_MASTER and FARMHAND_KEY."""
    parser.add_argument(
        "--master",
        type=master_list_argument,
        default=os.environ.get("FARMHAND_MASTER") or DEFAULT_MASTER,
        metavar="[tls://]HOST:PORT[,…]",
        help="the master to connect to, tls:// for TLS; a comma-separated list (standby "
        "masters) is tried in turn (env FARMHAND_MASTER; default %(default)s)",
    )
    parser.add_argument(
        "--key",
        default=os.environ.get("FARMHAND_KEY") or None,
        help="agent key from `keys.create` (env FARMHAND_KEY); not needed on loopback",
    )
    parser.add_argument(
        "--ca",
        type=ca_argument,
        default=os.environ.get("FARMHAND_CA") or None,
        metavar="FILE",
        help="CA bundle (PEM) that verifies a tls:// master's certificate (env FARMHAND_CA; "
        "default: the system's CAs)",
    )


def agent_parser(prog: str, description: str, epilog: str | None = None) -> ArgumentParser:
    """The parser of a program that connects to the master (the agents, the dashboard): it
    starts with --master, --key and --ca."""
    parser = ArgumentParser(prog=prog, description=description, epilog=epilog)
    add_agent_flags(parser)
    return parser


def add_name_flag(parser: argparse.ArgumentParser, suffix: str = "") -> None:
    """--name: the agent's unique client name, by default the host name (followed by `suffix`)."""
    described = f"the host name and {suffix}" if suffix else "the host name"
    parser.add_argument(
        "--name",
        default=f"{socket.gethostname()}{suffix}",
        help=f"unique client name (default: {described}, %(default)s)",
    )


def parse_flags(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Add the flags every program ends with (--log-level, --version), then parse `argv`."""
    add_logging_flag(parser)
    add_version_flag(parser)
    return parser.parse_args(argv)


def setup_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format=LOG_FORMAT, stream=sys.stderr)
    # peewee logs every statement at DEBUG: far too much even for --log-level debug.
    logging.getLogger("peewee").setLevel(max(logging.INFO, logging.getLogger().level))
