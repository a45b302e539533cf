"""farmhand worker: connects to the master and runs the tasks it orders.

Run `python worker.py --help` for the flags; SPEC §1 lists the contract.
"""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import sys
from pathlib import Path

import gevent

from agent.runtime import AgentRuntime
from cli.options import ArgumentParser, add_agent_flags, add_logging_flag, setup_logging

log = logging.getLogger("farmhand.worker")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = ArgumentParser(prog="worker.py", description="A farmhand worker: runs tasks.")
    add_agent_flags(parser)
    parser.add_argument(
        "--name",
        default=socket.gethostname(),
        help="unique client name (default: the host name, %(default)s)",
    )
    parser.add_argument("--slots", type=int, default=1, help="tasks at once (default 1)")
    parser.add_argument("--tags", default="", help="comma-separated tags, e.g. gpu,blender")
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=Path("var/work"),
        help="where tasks run when a job sets no cwd (default ./var/work)",
    )
    add_logging_flag(parser)
    args = parser.parse_args(argv)
    if args.slots < 1:
        parser.error("--slots must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging(args.log_level)
    tags = [tag.strip() for tag in args.tags.split(",") if tag.strip()]
    runtime = AgentRuntime(
        master=args.master,
        name=args.name,
        role="worker",
        key=args.key,
        info={"slots": args.slots, "tags": tags, "work_dir": str(args.work_dir)},
    )
    for signum in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(signum, runtime.stop)
    log.info("worker %s starting: master %s:%d, %d slot(s)", args.name, *args.master, args.slots)
    runtime.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
