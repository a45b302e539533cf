"""Bench: sensor readings from many hardware agents into the master, accepted and STORED per second.

    python bench/ingest.py [--agents 10] [--seconds 10] [--batch 500] [--mode stream|burst]
                           [--burst-every-s 0.1] [--profile FILE] [--mqtt URL]
                           [--alert-rules N]

Starts a real master (`master.py --port 0` on a temp data dir, SQLite), then `--agents` client
processes; each says hello as a `hardware` agent (bench-N) and sends `reading` notifications
with its own 50 sensors, as fast as the socket takes them (`stream`) or `--batch` at a time every
`--burst-every-s` (`burst`), for `--seconds`. A separate JSON-RPC connection polls `status`
(devices.readings_accepted / readings_stored) every 0.25 s. Figures: readings sent, accepted
per second while sending, stored per second from the first reading until everything sent is
stored, the best one-second stored rate, and how long storing lagged behind the senders.
Target (issue 4): >= 20,000 stored readings/s. `--profile FILE` runs the master under cProfile
(stats written to FILE when it stops) and prints its top functions. `--mqtt URL` measures it
with the MQTT bridge publishing to that broker (every sensor is then a retained topic).
`--alert-rules N` creates N alert rules first (issue 15): `above 7.5 for 1 min` on the agents'
sensors in turn (the readings go 4.0 to 7.9, so the rules leave and re-enter their range all
the time) plus a `silent` rule per agent; every watched reading is then evaluated at ingest.
Prints a readable block and one JSON line; exits 0 whether the target is met or not.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pstats
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.benchlib import RpcClient  # noqa: E402
from farmhand.blocking import Connection  # noqa: E402
from protocol.errors import RpcError  # noqa: E402

TARGET_STORED_PER_S = 20_000
SENSORS_PER_AGENT = 50
POLL_S = 0.25
DRAIN_TIMEOUT_S = 60.0

PROFILE_WRAPPER = """\
import cProfile, runpy, sys
out = sys.argv[1]
sys.argv = [sys.argv[2], *sys.argv[3:]]
sys.path.insert(0, {root!r})
cProfile.run("runpy.run_path(sys.argv[0], run_name='__main__')", out)
"""


# -- the agent processes ----------------------------------------------------------------------


def agent_main(port: int, index: int, seconds: float, batch: int, burst_every_s: float) -> None:
    """One hardware agent: hello, then readings until `seconds` pass; prints how many."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    connection = Connection(sock, name="master")
    hello = {"role": "hardware", "name": f"bench-{index}", "proto": 1, "info": {"bench": True}}
    try:
        connection.call("hello", hello, timeout=30)
    except RpcError as exc:
        raise SystemExit(f"bench-{index}: hello refused: {exc.message}") from None
    # A few pre-encoded batches, so the sender measures the master rather than its encoder.
    payloads = [
        b"".join(
            connection.peer.notification(
                "reading",
                {
                    "sensor": f"bench{index}.t{(k * batch + i) % SENSORS_PER_AGENT}",
                    "kind": "temperature",
                    "value": 4.0 + ((k * batch + i) % 40) / 10,
                    "unit": "C",
                },
            )
            for i in range(batch)
        )
        for k in range(4)
    ]
    sent = 0
    start = time.monotonic()
    end = start + seconds
    next_burst = start
    while (now := time.monotonic()) < end:
        if burst_every_s > 0:
            if now < next_burst:
                time.sleep(min(next_burst - now, end - now))
                continue
            next_burst += burst_every_s
        connection.send_encoded(payloads[(sent // batch) % len(payloads)])
        sent += batch
        connection.alive()  # nothing is expected; don't let anything pile up
    print(
        orjson.dumps({"agent": index, "sent": sent, "seconds": time.monotonic() - start}).decode()
    )
    sys.stdout.flush()
    # Stay connected until told to go, so the master is not busy with disconnects meanwhile.
    sys.stdin.read()
    connection.close()


# -- the controller ---------------------------------------------------------------------------


def start_master(
    data_dir: Path, profile: Path | None, mqtt: str | None = None
) -> tuple[subprocess.Popen[bytes], int]:
    args = [str(ROOT / "master.py"), "--port", "0", "--data-dir", str(data_dir)]
    args += ["--log-level", "warning"]
    if mqtt:
        args += ["--mqtt", mqtt]
    if profile is not None:
        wrapper = data_dir / "profile_master.py"
        wrapper.write_text(PROFILE_WRAPPER.format(root=str(ROOT)))
        args = [str(wrapper), str(profile), *args]
    proc = subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=(data_dir / "master.log").open("wb"),
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    match = re.search(r"listening on (\S+):(\d+)", line)
    if not match:
        proc.kill()
        raise SystemExit(f"master did not start: {line!r}")
    return proc, int(match.group(2))


def devices_status(rpc: RpcClient) -> tuple[float, int, int]:
    devices = rpc.call("status")["devices"]
    return time.monotonic(), devices["readings_accepted"], devices["readings_stored"]


def run(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    master, port = start_master(data_dir, args.profile, args.mqtt)
    children: list[subprocess.Popen[bytes]] = []
    try:
        rpc = RpcClient("127.0.0.1", port)
        for n in range(args.alert_rules):
            agent_index, sensor = n % args.agents, (n // args.agents) % SENSORS_PER_AGENT
            target = f"bench{agent_index}.t{sensor}"
            rpc.call(
                "alerts.create", {"kind": "above", "target": target, "value": 7.5, "minutes": 1}
            )
        if args.alert_rules:
            for index in range(args.agents):
                silent = {"kind": "silent", "target": f"bench-{index}", "minutes": 5}
                rpc.call("alerts.create", silent)
        samples = [devices_status(rpc)]
        for index in range(args.agents):
            child_args = [str(Path(__file__).resolve()), "--agent", str(index), "--port", str(port)]
            child_args += ["--seconds", str(args.seconds), "--batch", str(args.batch)]
            if args.mode == "burst":
                child_args += ["--burst-every-s", str(args.burst_every_s)]
            children.append(
                subprocess.Popen(
                    [sys.executable, *child_args],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                )
            )
        reports = []
        for child in children:
            assert child.stdout is not None
            # Poll the master while the agents send; each child prints one line when done.
            while True:
                line = _readline_polling(child, rpc, samples)
                if line:
                    reports.append(orjson.loads(line))
                    break
        senders_done = time.monotonic()
        sent = sum(report["sent"] for report in reports)
        while samples[-1][2] < sent and time.monotonic() - senders_done < DRAIN_TIMEOUT_S:
            time.sleep(POLL_S)
            samples.append(devices_status(rpc))
        return _figures(args, samples, sent, senders_done)
    finally:
        for child in children:
            with contextlib.suppress(OSError):
                if child.stdin:
                    child.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(10)
            if child.poll() is None:
                child.kill()
        master.send_signal(signal.SIGTERM)
        try:
            master.wait(60)
        except subprocess.TimeoutExpired:
            master.kill()


def _readline_polling(
    child: subprocess.Popen[bytes], rpc: RpcClient, samples: list[tuple[float, int, int]]
) -> bytes:
    assert child.stdout is not None
    os.set_blocking(child.stdout.fileno(), False)
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = child.stdout.read()
        if chunk:
            buf += chunk
            continue
        if child.poll() is not None and not chunk:
            raise SystemExit(f"an agent process died (exit {child.returncode})")
        time.sleep(POLL_S)
        samples.append(devices_status(rpc))
    return buf


def _figures(
    args: argparse.Namespace, samples: list[tuple[float, int, int]], sent: int, senders_done: float
) -> dict[str, Any]:
    t0 = next((t for t, accepted, _ in samples if accepted > 0), samples[0][0])
    t_end, accepted, stored = samples[-1]
    sending = [s for s in samples if s[0] <= senders_done]
    t_send_end, accepted_at_send_end, _ = sending[-1]
    stored_done_at = next((t for t, _, s in samples if s >= sent), t_end)
    best = 0.0
    for i, (t, _, s) in enumerate(samples):
        later = [x for x in samples[i:] if x[0] >= t + 1.0]
        if later:
            best = max(best, (later[0][2] - s) / (later[0][0] - t))
    stored_per_s = stored / max(1e-9, stored_done_at - t0)
    return {
        "agents": args.agents,
        "mode": args.mode,
        "seconds": args.seconds,
        "batch": args.batch,
        "alert_rules": args.alert_rules + (args.agents if args.alert_rules else 0),
        "sent": sent,
        "accepted": accepted,
        "stored": stored,
        "accepted_per_s": round(accepted_at_send_end / max(1e-9, t_send_end - t0)),
        "stored_per_s": round(stored_per_s),
        "best_1s_stored_per_s": round(best),
        "store_lag_s": round(max(0.0, stored_done_at - senders_done), 2),
        "target_stored_per_s": TARGET_STORED_PER_S,
        "pass": stored_per_s >= TARGET_STORED_PER_S and stored >= sent,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--batch", type=int, default=500, help="readings per send")
    parser.add_argument("--mode", choices=("stream", "burst"), default="stream")
    parser.add_argument("--burst-every-s", type=float, default=0.1)
    parser.add_argument("--profile", type=Path, help="run the master under cProfile")
    parser.add_argument("--mqtt", metavar="URL", help="run the master with this MQTT broker")
    parser.add_argument("--alert-rules", type=int, default=0, help="alert rules on the sensors")
    parser.add_argument("--agent", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.agent is not None:
        agent_main(args.port, args.agent, args.seconds, args.batch, args.burst_every_s)
        return 0
    with tempfile.TemporaryDirectory(prefix="farmhand-ingest-") as tmp:
        result = run(args, Path(tmp))
    print(
        f"ingest bench: {result['agents']} agents, {result['mode']}, {result['seconds']:g} s, "
        f"{result['alert_rules']} alert rules"
    )
    print(f"  sent                {result['sent']:>10,}")
    print(f"  accepted            {result['accepted']:>10,}  ({result['accepted_per_s']:,}/s)")
    verdict = "PASS" if result["pass"] else "MISS"
    print(
        f"  stored              {result['stored']:>10,}  ({result['stored_per_s']:,}/s, "
        f"target {TARGET_STORED_PER_S:,}/s: {verdict})"
    )
    print(f"  best 1 s stored     {result['best_1s_stored_per_s']:>10,}/s")
    print(f"  storing lagged by   {result['store_lag_s']:>10} s after the senders stopped")
    if args.profile is not None and args.profile.exists():
        print(f"\nmaster profile ({args.profile}), top 25 by own time:")
        pstats.Stats(str(args.profile)).sort_stats("tottime").print_stats(25)
    print(orjson.dumps(result).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
