"""farmhand node: the per-machine supervisor. Starts the agents listed in agents.toml, restarts
them with backoff, rotates their logs and reports to the master; `node.py status` (and start,
stop, restart AGENT, reload) talk to a running node through its local control socket.

Run `python node.py --help` for the flags; README.md and docs/ describe them.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import logging.handlers
import os
import signal
import site
import sys
from pathlib import Path

import gevent
from gevent.event import Event

import farmhand
from farmhand.agent.runtime import AgentRuntime
from farmhand.node import control
from farmhand.node.config import ConfigError, Inheritance, NodeConfig, load_config
from farmhand.node.service import NodeService
from farmhand.node.supervisor import Supervisor
from farmhand.options import (
    LOG_FORMAT,
    add_name_flag,
    agent_parser,
    parse_flags,
    program_name,
    setup_logging,
)
from protocol.errors import RpcError

log = logging.getLogger("farmhand.node")
PROG = program_name("node.py", "farmhand-node")

COMMANDS = ("status", "start", "stop", "restart", "reload")
NEEDS_AGENT = ("start", "stop", "restart")
RELOAD_KEYS = ("added", "removed", "changed", "unchanged")
DEFAULT_NAME_SUFFIX = "-node"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = agent_parser(
        PROG,
        "The farmhand node: supervises this machine's agents. With a command, "
        "talks to the node already running here instead.",
    )
    # Not the bare host name: that is the default name of this machine's worker, and two
    # clients of different roles under one name cannot both be online.
    add_name_flag(parser, DEFAULT_NAME_SUFFIX)
    parser.add_argument(
        "--config", type=Path, default=Path("agents.toml"), help="agents file (default agents.toml)"
    )
    parser.add_argument(
        "--log-dir",
        type=Path,
        default=Path("var/node-logs"),
        help="the node's and each agent's log files (default ./var/node-logs)",
    )
    parser.add_argument(
        "--control-socket",
        type=Path,
        help="the local control socket (default LOG_DIR/node.sock)",
    )
    parser.add_argument(
        "command", nargs="?", choices=COMMANDS, help="ask the running node: status, start AGENT…"
    )
    parser.add_argument("agent", nargs="?", help="the agent for start, stop and restart")
    args = parse_flags(parser, argv)
    if args.command in NEEDS_AGENT and not args.agent:
        parser.error(f"{args.command} needs an AGENT")
    if args.agent and args.command not in NEEDS_AGENT:
        parser.error(f"{args.command or 'the node'} takes no AGENT")
    args.control_socket = args.control_socket or args.log_dir / "node.sock"
    return args


def ask(args: argparse.Namespace) -> int:
    """`node.py status|start|stop|restart|reload`: one request to the running node."""
    method = control.COMMAND_METHODS[args.command]
    params = {"agent": args.agent} if args.command in NEEDS_AGENT else {}
    try:
        result = control.request(args.control_socket, method, params)
    except RpcError as exc:
        print(f"{PROG}: {args.command}: {exc.message}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"{PROG}: no node answers on {args.control_socket}: {exc}", file=sys.stderr)
        return 1
    if args.command == "status":
        print(control.render_procs(result["procs"]))
    elif args.command == "reload":
        print("; ".join(f"{key}: {', '.join(result[key]) or '-'}" for key in RELOAD_KEYS))
    else:
        pid = f", pid {result['pid']}" if result.get("pid") else ""
        print(f"{result['agent']}: {result['state']}{pid}")
    return 0


def agent_pythonpath() -> str | None:
    """What `python -m farmhand.worker` needs on PYTHONPATH to import farmhand as this node
    does: the checkout's folder when the node runs from one, nothing when farmhand is installed
    (in site-packages, where every interpreter of this environment looks)."""
    home = Path(farmhand.__file__).resolve().parent.parent
    site_dirs = {Path(folder).resolve() for folder in site.getsitepackages()}
    site_dirs.add(Path(site.getusersitepackages()).resolve())
    if home in site_dirs:
        return None
    return os.pathsep.join(filter(None, [str(home), os.environ.get("PYTHONPATH")]))


def log_to_file(log_dir: Path, config: NodeConfig) -> None:
    handler = logging.handlers.RotatingFileHandler(
        log_dir / "node.log", maxBytes=config.log_max_bytes, backupCount=config.log_backups
    )
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logging.getLogger().addHandler(handler)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command:
        return ask(args)
    setup_logging(args.log_level)
    inherit = Inheritance(
        master=str(args.master),
        key=args.key,
        ca=str(args.ca.resolve()) if args.ca else None,
        python=sys.executable,
        pythonpath=agent_pythonpath(),
    )

    def load() -> NodeConfig:
        return load_config(args.config, inherit)

    try:
        config = load()
    except ConfigError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    args.log_dir.mkdir(parents=True, exist_ok=True)
    log_to_file(args.log_dir, config)
    supervisor = Supervisor(config, args.log_dir)
    service = NodeService(supervisor, load, name=args.name)
    runtime = AgentRuntime(
        master=args.master,
        name=args.name,
        role="node",
        key=args.key,
        ca=args.ca,
        info={"agents": config.names(), "log_dir": str(args.log_dir.resolve())},
        handlers=service.handlers,
        on_connected=service.on_connected,
    )
    server = control.ControlServer(args.control_socket, service.handlers)
    try:
        server.start()
    except OSError as exc:
        print(f"{PROG}: error: control socket {args.control_socket}: {exc}", file=sys.stderr)
        return 1
    stopping = Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(signum, stopping.set)
    # Signal handlers run in the hub, which must not block: reload in a greenlet.
    gevent.signal_handler(signal.SIGHUP, gevent.spawn, _reload_quietly, service)
    log.info(
        "node %s starting: %d agent(s) from %s, master %s",
        args.name,
        len(config.agents),
        args.config,
        args.master,
    )
    supervisor.start_all(supervisor.clock())
    loops = [
        gevent.spawn(supervisor.serve, stopping),
        gevent.spawn(service.report_forever),
        gevent.spawn(runtime.run),
    ]
    stopping.wait()
    log.info("node %s stopping", args.name)
    supervisor.shutdown()
    service.report_now()  # the master sees them stopped, not stale
    runtime.stop()
    server.stop()
    gevent.killall(loops, timeout=2)
    log.info("node %s stopped", args.name)
    return 0


def _reload_quietly(service: NodeService) -> None:
    # A bad file is already logged, and the current agents stay.
    with contextlib.suppress(ConfigError):
        service.reload()


if __name__ == "__main__":
    sys.exit(main())
