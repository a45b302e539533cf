"""Command line of `python -m dashboard` (`farmhand-dashboard` when installed): serve the
dashboard, or `create-admin USERNAME`.

Serving: a gevent WSGI server on --host/--port; SIGTERM or SIGINT stop it cleanly (exit 0).
"""

from __future__ import annotations

import argparse
import getpass
import logging
import signal
import sys

import gevent
from gevent import monkey, socket
from gevent.event import Event
from gevent.pywsgi import LoggingLogAdapter, WSGIServer

from farmhand.options import agent_parser, parse_flags, program_name, setup_logging

from .app import create_app
from .rpc import MasterClient, MasterUnavailable, RpcError
from .runtime import Dashboard, Settings

log = logging.getLogger("farmhand.dashboard")
STOP_TIMEOUT_S = 3.0
PROG = program_name("python -m dashboard", "farmhand-dashboard")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = agent_parser(
        PROG, "The farmhand web dashboard. `create-admin USERNAME` makes the first admin."
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default %(default)s)"
    )
    parser.add_argument(
        "--port", type=int, default=8080, help="port (default %(default)s; 0 = any)"
    )
    parser.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a host name browsers may use to reach the dashboard (repeatable); localhost and "
        "IP addresses are always accepted",
    )
    parser.add_argument(
        "--secure-cookies", action="store_true", help="mark the session cookie Secure (HTTPS)"
    )
    parser.add_argument("command", nargs="?", choices=["serve", "create-admin"], default="serve")
    parser.add_argument("username", nargs="?", help="for create-admin: the new admin's name")
    args = parse_flags(parser, argv)
    if args.command == "create-admin" and not args.username:
        parser.error("create-admin needs a USERNAME")
    if args.command == "serve" and args.username:
        parser.error(f"unexpected argument {args.username!r}")
    if not 0 <= args.port < 65536:
        parser.error(f"bad port {args.port}: expected 0-65535")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging(args.log_level)
    if args.command == "create-admin":
        return create_admin(args)
    settings = Settings(
        master=args.master,
        key=args.key,
        ca=args.ca,
        host=args.host,
        port=args.port,
        allowed_hosts=frozenset(args.allowed_host),
        secure_cookies=args.secure_cookies,
    )
    return serve(settings)


def listen(host: str, port: int) -> socket.socket:
    """The listening socket; TCP_NODELAY (inherited by accepted sockets on Linux) keeps
    pywsgi's separate header and body writes from waiting 40 ms for a delayed ACK."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(1024)
    return sock


def serve(settings: Settings) -> int:
    if not monkey.is_module_patched("threading"):
        log.warning("threading is not monkey-patched: start it with dashboard.__main__.main")
    dash = Dashboard(settings)
    try:
        listener = listen(settings.host, settings.port)
    except OSError as exc:
        print(
            f"{PROG}: error: cannot listen on {settings.host}:{settings.port}: {exc.strerror}",
            file=sys.stderr,
        )
        return 1
    server = WSGIServer(
        listener,
        create_app(dash),
        log=LoggingLogAdapter(logging.getLogger("farmhand.dashboard.access"), logging.DEBUG),
        error_log=logging.getLogger("farmhand.dashboard.http"),
    )
    server.start()
    dash.start()
    stop = Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(signum, stop.set)
    host = settings.host if settings.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
    print(
        f"farmhand dashboard on http://{host}:{server.server_port}/ (master {settings.master})",
        flush=True,
    )
    stop.wait()
    log.info("stopping")
    server.stop(timeout=STOP_TIMEOUT_S)
    dash.stop()
    return 0


def read_password(username: str) -> str:
    """Prompt twice on a terminal; read one line from stdin otherwise (scripts, tests)."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass(f"password for {username}: ")
    if first != getpass.getpass("again: "):
        raise ValueError("the passwords differ")
    return first


def create_admin(args: argparse.Namespace) -> int:
    """users.create over JSON-RPC with a password and admin true."""
    try:
        password = read_password(args.username)
    except (ValueError, EOFError, KeyboardInterrupt) as exc:
        print(f"{PROG}: error: {exc or 'no password'}", file=sys.stderr)
        return 1
    if len(password) < 8:
        print(f"{PROG}: error: use a password of at least 8 characters", file=sys.stderr)
        return 1
    client = MasterClient(args.master, args.key, name="dashboard-cli", ca=args.ca)
    client.start()
    try:
        if not client.wait_connected(5.0):
            raise MasterUnavailable(client.last_error or "no connection")
        user = client.call(
            "users.create", {"username": args.username, "password": password, "admin": True}
        )
    except (RpcError, MasterUnavailable) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    finally:
        client.stop()
    print(f"created admin {user['username']}")
    return 0
