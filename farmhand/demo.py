"""`make demo` (`python -m farmhand.demo`): a farm anyone can pour from, without hardware.

Starts a master, the dashboard, a simulated Kegboard with two taps and a fridge thermometer, an
ID-12 RFID reader (an auth agent) and two workers, each the real program with a `sim://` device
where hardware would be; seeds users, cards, taps and kegs over JSON-RPC; prints what to type
and click. Ctrl-C (or SIGTERM) stops everything. `--for SECONDS` stops by itself (for tests).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from farmhand.client import Client, RpcError
from farmhand.options import ArgumentParser
from protocol.errors import ErrorCode

KEGBOARD = "kegboard"
READER = "rfid"
WORKERS = ("demo-worker-1", "demo-worker-2")
# ID-12 cards are 10 hex digits.
PEOPLE = [
    ("alice", "Alice", "a1ce000001"),
    ("bob", "Bob", "b0b0000002"),
]
TAPS = [
    ("tap1", "flow0", "relay0", "Pale Ale", 19_000),
    ("tap2", "flow1", "relay1", "Oatmeal Stout", 20_000),
]
DASHBOARD_ADMIN = ("demo", "demo-pass")
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = ArgumentParser(prog="farmhand-demo", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="address of every port")
    parser.add_argument("--port", type=int, default=6000, help="the master's port (0 = any)")
    parser.add_argument("--web-port", type=int, default=8080, help="the dashboard's (0 = any)")
    parser.add_argument("--data-dir", type=Path, default=Path("var/demo"), help="state and logs")
    parser.add_argument("--mqtt", metavar="URL", help="also publish to this MQTT broker")
    parser.add_argument("--for", dest="run_s", type=float, help="stop after this many seconds")
    return parser.parse_args(argv)


class Child:
    """One program of the demo: its stderr goes to DATA/NAME.log, stdout is read for its port."""

    def __init__(self, name: str, argv: list[str], data_dir: Path) -> None:
        self.name = name
        self.log_path = data_dir / f"{name}.log"
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, *argv],
            stdout=subprocess.PIPE,
            stderr=self._log,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def first_line(self, pattern: str) -> re.Match[str]:
        """The first line of output matching `pattern` (the program's 'listening on' line)."""
        stdout: IO[bytes] | None = self.proc.stdout
        assert stdout is not None
        line = stdout.readline().decode()
        match = re.search(pattern, line)
        if match is None:
            raise RuntimeError(f"{self.name} did not start ({line.strip()!r}); see {self.log_path}")
        threading.Thread(target=_drain, args=(stdout,), daemon=True).start()
        return match

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


def _drain(stream: IO[bytes]) -> None:
    for _ in iter(stream.readline, b""):
        pass


def wait_until(condition: Callable[[], Any], what: str, timeout: float = START_TIMEOUT_S) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.1)


def seed(farm: Client) -> None:
    """Users, cards, taps and kegs; what exists already (a second run) is left as it is."""

    def once(method: str, **params: Any) -> None:
        try:
            farm.call(method, **params)
        except RpcError as exc:
            if exc.code != ErrorCode.CONFLICT:
                raise

    username, password = DASHBOARD_ADMIN
    once(
        "users.create", username=username, display_name="Demo admin", password=password, admin=True
    )
    for username, display_name, card in PEOPLE:
        once("users.create", username=username, display_name=display_name)
        once("tokens.assign", reader="core.rfid", token=card, username=username)
    taps = {tap["name"]: tap for tap in farm.call("taps.list")["taps"]}
    for tap, meter, relay, beverage, volume_ml in TAPS:
        farm.call(
            "taps.configure",
            tap=tap,
            meter=f"{KEGBOARD}.{meter}",
            output=f"{KEGBOARD}.{relay}",
            auth_agents=[KEGBOARD, READER],
            idle_s=3,
        )
        if not (taps.get(tap) or {}).get("keg"):
            farm.call("kegs.start", tap=tap, beverage=beverage, volume_ml=volume_ml)


def agents_online(farm: Client, names: list[str]) -> bool:
    online = {c["name"] for c in farm.call("clients.list", select="online")["clients"]}
    return set(names) <= online


def instructions(master: str, dashboard: str, data_dir: Path) -> str:
    host, port = master.rsplit(":", 1)
    alice, bob = PEOPLE[0][2], PEOPLE[1][2]
    return f"""
  The farmhand demo is running: master {master}, dashboard {dashboard}
  a simulated Kegboard `{KEGBOARD}` (tap1 Pale Ale, tap2 Oatmeal Stout, a fridge thermometer),
  an RFID reader `{READER}`, two workers; logs in {data_dir}/.

  1. Open {dashboard} and sign in as {DASHBOARD_ADMIN[0]} / {DASHBOARD_ADMIN[1]}; open Taps.
  2. In another terminal: telnet {host} {port}   (or: nc {host} {port})
       sim swipe {READER} {alice}     Alice swipes her card
       sim pour tap1 300             300 ml through tap1's meter: the valve opens, a flow runs
       pours                         after 3 s idle the pour is Alice's, the keg is lighter
       taps                          kegs and what is left
       sim temp {KEGBOARD} fridge 9   warm the fridge; `readings` shows it
       sim swipe {READER} {bob}     now Bob: the reader serves both taps
       sim pour tap2 150 5           150 ml over 5 s: watch the flow on the Taps page
  3. Jobs for the two workers:
       farmhand --master {master} submit demo --frames 1-8 -- sh -c 'echo {{frame}}; sleep 1'
  Ctrl-C stops everything.
"""


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    data_dir: Path = args.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    children: list[Child] = []
    try:
        master_argv = ["-m", "farmhand.master", "--host", args.host, "--port", str(args.port)]
        master_argv += ["--data-dir", str(data_dir / "master")]
        if args.mqtt:
            master_argv += ["--mqtt", args.mqtt]
        children.append(Child("master", master_argv, data_dir))
        found = children[0].first_line(r"listening on (\S+):(\d+)")
        master = f"{found.group(1)}:{found.group(2)}"
        agent = ["--master", master]
        thermo = "sim://?thermo=fridge:3.5"
        hw = ["-m", "farmhand.hardware", *agent]
        children.append(
            Child(
                KEGBOARD,
                [*hw, "--name", KEGBOARD, "--driver", "kegboard", "--device", thermo],
                data_dir,
            )
        )
        children.append(
            Child(
                READER, [*hw, "--name", READER, "--driver", "id12", "--device", "sim://"], data_dir
            )
        )
        for name in WORKERS:
            work = ["--name", name, "--work-dir", str(data_dir / name)]
            children.append(Child(name, ["-m", "farmhand.worker", *agent, *work], data_dir))
        web = ["--host", args.host, "--port", str(args.web_port)]
        dashboard_child = Child("dashboard", ["-m", "dashboard", *agent, *web], data_dir)
        children.append(dashboard_child)
        dashboard = dashboard_child.first_line(r"(http://\S+)").group(1)
        with Client(master) as farm:
            seed(farm)
            wait_until(
                lambda: agents_online(farm, [KEGBOARD, READER, *WORKERS]), "the agents to connect"
            )
        print(instructions(master, dashboard, data_dir), flush=True)
        print(f"demo ready: master {master} dashboard {dashboard}", flush=True)
        deadline = None if args.run_s is None else time.monotonic() + args.run_s
        while not stop.is_set():
            if any(child.proc.poll() is not None for child in children):
                dead = [c.name for c in children if c.proc.poll() is not None]
                print(f"farmhand-demo: {', '.join(dead)} stopped; see {data_dir}", file=sys.stderr)
                return 1
            if deadline is not None and time.monotonic() >= deadline:
                break
            stop.wait(0.5)
        return 0
    except (RuntimeError, RpcError, OSError) as exc:
        print(f"farmhand-demo: error: {exc}", file=sys.stderr)
        return 1
    finally:
        for child in reversed(children):
            with contextlib.suppress(OSError):
                child.stop()


if __name__ == "__main__":
    sys.exit(main())
