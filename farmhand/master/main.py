"""farmhand master: the hub every worker, agent, script and operator connects to.

Run `python master.py --help` for the flags; README.md and docs/ describe them.
"""

from __future__ import annotations

import argparse
import gc
import logging
import resource
import signal
import sys
from dataclasses import fields
from pathlib import Path

import gevent

from farmhand.master.app import ListenError, Master
from farmhand.master.config import MasterConfig, check_tls_settings, load_config_file
from farmhand.master.exposure import exposure_warnings
from farmhand.options import ArgumentParser, parse_flags, program_name, setup_logging

log = logging.getLogger("farmhand.master")
PROG = program_name("master.py", "farmhand-master")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = ArgumentParser(
        prog=PROG,
        description="The farmhand master: one TCP port for agents, JSON-RPC and the console.",
        argument_default=argparse.SUPPRESS,
    )
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default 6000; 0 = any)")
    parser.add_argument("--data-dir", type=Path, help="database and task logs (default ./var)")
    parser.add_argument(
        "--db", help="database URL (default SQLite in the data dir; postgresql://… also works)"
    )
    parser.add_argument("--config", type=Path, help="TOML file with any of these settings")
    parser.add_argument("--require-key", action="store_true", help="loopback peers need a key too")
    parser.add_argument(
        "--heartbeat-s", type=float, help="agents' heartbeat interval in seconds (default 5)"
    )
    parser.add_argument(
        "--max-connections", type=int, help="connections served at once (default 20000)"
    )
    parser.add_argument(
        "--tls-port",
        type=int,
        metavar="N",
        help="also serve both dialects over TLS on this port (with --tls-cert and --tls-key)",
    )
    parser.add_argument("--tls-cert", type=Path, metavar="FILE", help="TLS certificate (PEM)")
    parser.add_argument(
        "--tls-key", type=Path, metavar="FILE", help="TLS private key (PEM, unencrypted)"
    )
    parser.add_argument(
        "--mqtt",
        metavar="URL",
        help="publish state, events and Home Assistant discovery to this MQTT broker "
        "(mqtt://[USER[:PASSWORD]@]HOST:PORT, mqtts://; docs/mqtt.md)",
    )
    parser.add_argument(
        "--job-retention-days",
        type=float,
        metavar="N",
        help="delete finished jobs with their tasks and logs N days after they end (0: never)",
    )
    parser.add_argument(
        "--templates",
        dest="templates_dir",
        type=Path,
        metavar="DIR",
        help="folder of studio job templates, *.toml (docs/templates.md)",
    )
    return parse_flags(parser, argv)


def build_config(args: argparse.Namespace) -> MasterConfig:
    settings = load_config_file(args.config) if "config" in args else {}
    for field in fields(MasterConfig):
        if field.name in args:
            settings[field.name] = getattr(args, field.name)
    config = MasterConfig(**settings)
    if not 0 <= config.port < 65536:
        raise ValueError(f"bad port {config.port}: expected 0-65535")
    if config.heartbeat_s <= 0:
        raise ValueError("heartbeat_s must be positive")
    if not config.prune_offline_s >= 0:
        raise ValueError("prune_offline_s must not be negative")
    check_tls_settings(config)
    return config


def tune_process() -> None:
    """Room for many connections and short GC pauses (measured by bench/agents.py)."""
    # Parent links between greenlets cost ~1 KB per connection and nothing here reads them.
    gevent.config.track_greenlet_tree = False
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    # With 10,000 agents a full collection takes ~100 ms; the default thresholds ran one every
    # few clients.list calls. Larger young-generation batches keep answers under ~35 ms.
    gc.set_threshold(50_000, 20, 10)


def print_exposure_warnings(config: MasterConfig) -> None:
    """Loud, on stderr whatever the log level, so that nobody exposes the farm unawares."""
    for warning in exposure_warnings(config):
        print(f"{PROG}: WARNING: EXPOSED: {warning}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging(getattr(args, "log_level", "info"))
    try:
        config = build_config(args)
    except ValueError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    print_exposure_warnings(config)
    tune_process()
    while True:
        try:
            master = Master(config)
        except ValueError as exc:  # a TLS certificate or key that cannot be used
            print(f"{PROG}: error: {exc}", file=sys.stderr)
            return 2
        status = run_master(master)
        if status is not None:
            return status
        # Stepped down: another master took over. Start over as a standby, with fresh state.
        log.warning("starting over as a standby")


def run_master(master: Master) -> int | None:
    """Run one master until it stops (its exit status) or steps down (None)."""
    for signum in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(signum, master.request_stop)

    def standing_by(holder: str) -> None:
        config = master.config
        print(
            f"farmhand master standing by for {config.host}:{config.port} "
            f"(the active master is {holder or 'unknown'})",
            flush=True,
        )

    try:
        if not master.start(standing_by):
            return 0  # stopped while standing by
    except ListenError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        log.exception("start failed")
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    host, port = master.address
    tls = master.services.tls_address
    also = f", TLS on tls://{tls[0]}:{tls[1]}" if tls else ""
    print(f"farmhand master listening on {host}:{port}{also}", flush=True)
    master.serve_until_stopped()
    if master.stepped_down:
        master.abandon()
        return None
    return master.stop()  # 0, or 3 when the database kept changes from being stored


if __name__ == "__main__":
    sys.exit(main())
