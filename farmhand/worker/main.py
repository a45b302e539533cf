"""farmhand worker: connects to the master and runs the tasks it orders.

Run `python worker.py --help` for the flags; README.md and docs/ describe them.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from farmhand.agent.exits import EXIT_RESTART, EXIT_STOP
from farmhand.agent.runtime import AgentRuntime, stop_on_signals
from farmhand.options import add_name_flag, agent_parser, parse_flags, program_name, setup_logging
from farmhand.worker.service import WorkerService
from farmhand.worker.taskgroups import TaskGroups, WorkDirBusy
from farmhand.worker.taskpolicy import DENIED_ENV, TaskPolicy

log = logging.getLogger("farmhand.worker")
PROG = program_name("worker.py", "farmhand-worker")

# On SIGTERM, time (beyond the kill grace) to deliver the canceled tasks' results.
SHUTDOWN_REPORT_S = 3.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = agent_parser(
        PROG,
        "A farmhand worker: runs tasks.",
        epilog=f"exit status: 0 stopped by SIGTERM or SIGINT; {EXIT_STOP} stopped by the master "
        f"(clients.stop: a node leaves it stopped); {EXIT_RESTART} restart asked by the master "
        "(clients.restart: a node starts it again); 2 bad flags or work dir in use",
    )
    add_name_flag(parser)
    parser.add_argument("--slots", type=int, default=1, help="tasks at once (default 1)")
    parser.add_argument("--tags", default="", help="comma-separated tags, e.g. gpu,blender")
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=Path("var/work"),
        help="where tasks run when a job sets no cwd, and what a relative cwd is inside; it "
        "also holds the journal of this worker's task groups (default ./var/work)",
    )
    parser.add_argument(
        "--allow-cwd",
        action="append",
        default=[],
        metavar="DIR",
        help="a folder (and everything under it) where a job's absolute cwd may be, e.g. a "
        "shared render mount; repeatable or comma-separated (default: none, tasks run inside "
        "the work dir)",
    )
    parser.add_argument(
        "--allow-env",
        action="append",
        default=[],
        metavar="NAME",
        help="let jobs set this env name (a glob) although the deny list has it "
        f"({', '.join(DENIED_ENV)}); repeatable or comma-separated",
    )
    parser.add_argument(
        "--kill-grace-s",
        type=float,
        default=5.0,
        help="seconds between SIGTERM and SIGKILL when a task is canceled or times out (default 5)",
    )
    args = parse_flags(parser, argv)
    if args.slots < 1:
        parser.error("--slots must be at least 1")
    if not args.kill_grace_s >= 0:
        parser.error("--kill-grace-s must not be negative")
    # Comma-separated too, as agents.toml writes a list (`allow_cwd = ["/a", "/b"]`).
    args.allow_cwd = [Path(item) for value in args.allow_cwd for item in _items(value)]
    args.allow_env = [item for value in args.allow_env for item in _items(value)]
    for root in args.allow_cwd:
        if not root.is_absolute():
            parser.error(f"--allow-cwd {root}: must be an absolute path")
    return args


def _items(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging(args.log_level)
    tags = [tag.strip() for tag in args.tags.split(",") if tag.strip()]
    # Before anything connects: kill what a previous incarnation left, start the task guard.
    groups = TaskGroups(args.work_dir, args.name, args.kill_grace_s)
    try:
        groups.start()
    except WorkDirBusy as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(
            f"{PROG}: error: cannot set up {args.work_dir} or the task guard: {exc}",
            file=sys.stderr,
        )
        return 2
    policy = TaskPolicy(
        args.work_dir, worker_name=args.name, allow_cwd=args.allow_cwd, allow_env=args.allow_env
    )
    # The master's stop and restart orders end the program with their exit code.
    exit_code = [0]

    def stopped(code: int) -> None:
        exit_code[0] = code
        runtime.stop()

    service = WorkerService(
        slots=args.slots,
        work_dir=args.work_dir,
        kill_grace_s=args.kill_grace_s,
        policy=policy,
        groups=groups,
        on_stopped=stopped,
    )
    runtime = AgentRuntime(
        master=args.master,
        name=args.name,
        role="worker",
        key=args.key,
        ca=args.ca,
        info={"slots": args.slots, "tags": tags, "work_dir": str(args.work_dir)},
        handlers=service.handlers,
        running=service.running,
        hello_params=service.hello_params,
        on_connected=service.on_connected,
    )

    def stop() -> None:
        service.shutdown(timeout_s=args.kill_grace_s + SHUTDOWN_REPORT_S)
        runtime.stop()

    stop_on_signals(stop)
    log.info("worker %s starting: master %s, %d slot(s)", args.name, args.master, args.slots)
    try:
        runtime.run()
    finally:
        groups.close()
    return exit_code[0]


if __name__ == "__main__":
    sys.exit(main())
