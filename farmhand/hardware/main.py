"""farmhand hardware agent: bridges one serial device (or a tailed log file) to the master.

Run `python hwagent.py --help` for the flags; README.md and docs/kegboard.md describe them.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from pathlib import Path

from farmhand.agent.runtime import AgentRuntime, stop_on_signals
from farmhand.hardware.drivers import DEFAULT_BAUD, DRIVER_NAMES
from farmhand.hardware.service import HardwareService, ReportOutbox, build_driver
from farmhand.options import add_name_flag, agent_parser, parse_flags, program_name, setup_logging

log = logging.getLogger("farmhand.hwagent")
PROG = program_name("hwagent.py", "farmhand-hwagent")

# On SIGTERM, time to hand the reports still queued to the master.
SHUTDOWN_REPORT_S = 3.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = agent_parser(PROG, "A farmhand hardware agent: bridges one serial device or log file.")
    add_name_flag(parser)
    parser.add_argument("--driver", required=True, choices=DRIVER_NAMES, help="the device's kind")
    parser.add_argument(
        "--device",
        required=True,
        metavar="URL",
        help="serial port or pyserial URL (/dev/ttyUSB0, socket://host:port, loop://); "
        "for --driver tail, the file to follow",
    )
    parser.add_argument(
        "--baud",
        type=int,
        help="serial speed (default 115200 for kegboard, 9600 for id12 and lines)",
    )
    parser.add_argument(
        "--tail-regex",
        metavar="REGEX",
        help="tail: report only matching lines; named groups value/sensor/kind/unit make a "
        "reading, other groups become the event's fields",
    )
    parser.add_argument(
        "--state-file",
        type=Path,
        help="tail: where the read position is kept (default ./var/hwagent-NAME.state)",
    )
    parser.add_argument(
        "--relay-refresh-s",
        type=float,
        default=5.0,
        help="kegboard: re-send an open relay's command this often (default 5; the board "
        "closes it 10 s after the last one)",
    )
    args = parse_flags(parser, argv)
    if args.baud is None:
        args.baud = DEFAULT_BAUD.get(args.driver, 9600)
    elif args.baud <= 0:
        parser.error("--baud must be a positive number")
    if not args.relay_refresh_s > 0:
        parser.error("--relay-refresh-s must be positive")
    if args.driver != "tail" and (args.tail_regex or args.state_file):
        parser.error("--tail-regex and --state-file only go with --driver tail")
    args.regex = None
    if args.tail_regex:
        try:
            args.regex = re.compile(args.tail_regex)
        except re.error as exc:
            parser.error(f"--tail-regex: {exc}")
    if args.driver == "tail" and args.state_file is None:
        args.state_file = Path("var") / f"hwagent-{args.name}.state"
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging(args.log_level)
    outbox = ReportOutbox()
    try:
        driver = build_driver(
            args.driver,
            outbox,
            device=args.device,
            baud=args.baud,
            agent_name=args.name,
            state_file=args.state_file,
            tail_regex=args.regex,
            relay_refresh_s=args.relay_refresh_s,
        )
    except ValueError as exc:  # a sim:// device the driver cannot simulate, or a bad option
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    service = HardwareService(driver, outbox)
    runtime = AgentRuntime(
        master=args.master,
        name=args.name,
        role=driver.role,
        key=args.key,
        ca=args.ca,
        info={"driver": args.driver, "devices": [args.device]},
        handlers=service.handlers,
        on_connected=service.on_connected,
    )

    def stop() -> None:
        service.shutdown(timeout_s=SHUTDOWN_REPORT_S)
        runtime.stop()

    stop_on_signals(stop)
    log.info(
        "hwagent %s starting: %s on %s, master %s",
        args.name,
        args.driver,
        args.device,
        args.master,
    )
    service.start()
    runtime.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
