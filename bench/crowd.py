"""Bench: `ping` latency while 200 API clients and 300 agents keep the master busy.

    python bench/crowd.py [--api-clients 200] [--agents 300] [--procs 2] [--seconds 20]
                          [--think-s 0.5] [--jobs 20] [--profile]

Starts a real master (`master.py --port 0` on a temp data dir, SQLite) and, each in processes
of their own so that nothing runs inside the measuring process but the probe:

- `--agents` heartbeating agents (bench/agents.py's client processes, heartbeat every 5 s),
  split over `--procs` processes;
- `--api-clients` JSON-RPC connections over `--procs` more processes (gevent), each calling, in
  a loop with `--think-s` (jittered) between calls, a mix of what dashboards and scripts call:
  `status`, `jobs.list` (limit 50), `clients.list select=online`, `jobs.get` of a seeded job
  and `tasks.list` of it (limit 50). `--think-s 0` is a saturating crowd;
- `--jobs` seeded jobs of 100 tasks each, held queued (they need a tag no agent has).

The probe (this process) sends `ping` on its own connection every 20 ms for `--seconds` and
prints its median, p99 and max, the crowd's call rate and latency, and the master's CPU.
Target: ping p99 < 50 ms. `--profile` runs py-spy on the master meanwhile (bench/profiler.py).
Prints a readable block with PASS/MISS and one JSON line; exits 0 whether the target is met or
not (it is a benchmark, not a test), 1 on errors.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.agents import raise_fd_limit, start_clients, wait_online  # noqa: E402
from bench.benchlib import BenchError, RpcClient, percentile, start_master, stop_all  # noqa: E402
from bench.profiler import Profiler, find_py_spy, print_hotspots  # noqa: E402

PING_TARGET_MS = 50.0
PROBE_INTERVAL_S = 0.02
AGENT_HEARTBEAT_S = 5.0
CONNECT_SPREAD_S = 1.0


# -- API client processes (gevent) -------------------------------------------------------------
def run_api_clients(host: str, port: int, count: int, think_s: float, job_id: int) -> int:
    """Body of one API process: `count` connections calling the mix until stdin closes; on
    exit prints one JSON line with the calls made, errors and round-trip times."""
    import gevent
    from gevent import socket as gsocket

    from farmhand.transport import Overflow, RpcTransport
    from protocol.errors import RpcError

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise_fd_limit()
    mix: list[tuple[str, dict[str, Any]]] = [
        ("status", {}),
        ("jobs.list", {"limit": 50}),
        ("clients.list", {"select": "online"}),
        ("jobs.get", {"job_id": job_id}),
        ("tasks.list", {"job_id": job_id, "limit": 50}),
    ]
    times_ms: list[float] = []
    errors: dict[str, int] = {}

    def client(index: int) -> None:
        gevent.sleep(random.uniform(0.0, CONNECT_SPREAD_S))
        sock = gsocket.create_connection((host, port), timeout=30)
        sock.settimeout(None)
        link = RpcTransport(sock, name=f"api-{index}", overflow=Overflow.WAIT)
        gevent.spawn(link.serve)
        rng = random.Random(index)
        while True:
            method, params = rng.choice(mix)
            began = time.perf_counter()
            try:
                link.call(method, params, timeout=30)
            except (RpcError, gevent.Timeout, OSError) as exc:
                key = f"{method}: {type(exc).__name__}"
                errors[key] = errors.get(key, 0) + 1
                if isinstance(exc, OSError):
                    return
            else:
                times_ms.append((time.perf_counter() - began) * 1000)
            if think_s > 0:
                gevent.sleep(think_s * rng.uniform(0.5, 1.5))
            else:
                gevent.sleep(0)

    for index in range(count):
        gevent.spawn(client, index)
    fd = sys.stdin.fileno()
    while True:
        gsocket.wait_read(fd)
        if not os.read(fd, 4096):
            break
    report = {"calls": len(times_ms), "errors": errors, "times_ms": times_ms}
    sys.stdout.buffer.write(orjson.dumps(report, option=orjson.OPT_APPEND_NEWLINE))
    sys.stdout.flush()
    os._exit(0)


def start_api_clients(
    host: str,
    port: int,
    count: int,
    procs: int,
    think_s: float,
    job_id: int,
    started: list[subprocess.Popen[bytes]],
) -> list[subprocess.Popen[bytes]]:
    clients = []
    for n in range(procs):
        share = count * (n + 1) // procs - count * n // procs
        argv = [sys.executable, __file__, "--api-process", host, str(port), str(share)]
        argv += ["--think-s", str(think_s), "--job-id", str(job_id)]
        client = subprocess.Popen(argv, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        started.append(client)
        clients.append(client)
    return clients


def collect(clients: list[subprocess.Popen[bytes]]) -> list[dict[str, Any]]:
    """Close each API process's stdin (it stops and reports) and read its report."""
    reports = []
    for client in clients:
        assert client.stdin is not None and client.stdout is not None
        client.stdin.close()
    for client in clients:
        assert client.stdout is not None
        line = client.stdout.readline()
        if not line:
            raise BenchError(f"an API process exited without a report ({client.wait()})")
        reports.append(orjson.loads(line))
    return reports


# -- the conductor -----------------------------------------------------------------------------
def seed_jobs(rpc: RpcClient, jobs: int) -> int:
    """`jobs` queued jobs of 100 tasks each that no agent can take; returns the first id."""
    first = 0
    for n in range(jobs):
        spec = {
            "name": f"crowd-{n}",
            "argv": ["true"],
            "frames": "1-100",
            "tags": ["nobody-has-this-tag"],
        }
        job_id = rpc.call("jobs.submit", spec)["job_id"]
        first = first or job_id
    return first


def stats_ms(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"median": None, "p99": None, "max": None}
    return {
        "median": round(statistics.median(values), 2),
        "p99": round(percentile(values, 0.99), 2),
        "max": round(max(values), 2),
    }


def run(args: argparse.Namespace, data_dir: Path, profiler: Profiler | None) -> dict[str, Any]:
    started: list[subprocess.Popen[bytes]] = []
    rpc: RpcClient | None = None
    try:
        master, host, port = start_master(data_dir, started, "--heartbeat-s", "5")
        master_ps = psutil.Process(master.pid)
        rpc = RpcClient(host, port)
        job_id = seed_jobs(rpc, args.jobs)
        agents = start_clients(host, port, args.agents, args.procs, AGENT_HEARTBEAT_S, started)
        wait_online(rpc, agents, args.agents)
        api = start_api_clients(
            host, port, args.api_clients, args.procs, args.think_s, job_id, started
        )
        time.sleep(CONNECT_SPREAD_S + 1.0)  # every API client connected and calling
        if profiler is not None:
            profiler.start(master.pid)
        cpu_0, wall_0 = sum(master_ps.cpu_times()[:2]), time.monotonic()
        pings: list[float] = []
        deadline = wall_0 + args.seconds
        while time.monotonic() < deadline:
            began = time.perf_counter()
            rpc.call("ping")
            pings.append((time.perf_counter() - began) * 1000)
            time.sleep(max(0.0, PROBE_INTERVAL_S - (time.perf_counter() - began)))
        elapsed = time.monotonic() - wall_0
        master_cpu = (sum(master_ps.cpu_times()[:2]) - cpu_0) / elapsed
        if profiler is not None:
            profiler.stop()
        reports = collect(api)
        online = rpc.call("status")["clients"]["online"]
    finally:
        if rpc is not None:
            rpc.close()
        stop_all(started)
    crowd = [t for report in reports for t in report["times_ms"]]
    errors: dict[str, int] = {}
    for report in reports:
        for key, n in report["errors"].items():
            errors[key] = errors.get(key, 0) + n
    ping = stats_ms(pings)
    return {
        "api_clients": args.api_clients,
        "agents": args.agents,
        "agents_online": online,
        "procs": args.procs,
        "think_s": args.think_s,
        "seconds": round(elapsed, 2),
        "pings": len(pings),
        "ping_ms": ping,
        "crowd_calls": len(crowd),
        "crowd_calls_per_s": round(len(crowd) / elapsed, 1),
        "crowd_ms": stats_ms(crowd),
        "crowd_errors": errors,
        "master_cpu_pct": round(100 * master_cpu, 1),
        "ok": ping["p99"] is not None and ping["p99"] < PING_TARGET_MS,
    }


def print_report(r: dict[str, Any]) -> None:
    ping, crowd = r["ping_ms"], r["crowd_ms"]
    print(
        f"crowd      {r['api_clients']} API clients (think {r['think_s']} s) and "
        f"{r['agents']} agents ({r['agents_online']} online at the end), "
        f"{r['procs']}+{r['procs']} processes"
    )
    print(
        f"crowd API  {r['crowd_calls_per_s']:,.0f} calls/s; median {crowd['median']} ms, "
        f"p99 {crowd['p99']} ms, max {crowd['max']} ms"
    )
    for key, n in r["crowd_errors"].items():
        print(f"           {n:,} x {key}")
    print(f"master CPU {r['master_cpu_pct']:.1f} % of a core")
    print(
        f"ping       {r['pings']:,} probes over {r['seconds']:.0f} s: median {ping['median']} ms, "
        f"p99 {ping['p99']} ms, max {ping['max']} ms"
    )
    verdict = "PASS" if r["ok"] else "MISS"
    print(f"           target p99 < {PING_TARGET_MS:.0f} ms  {verdict}")
    print(orjson.dumps(r).decode())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api-clients", type=int, default=200, help="API connections (200)")
    parser.add_argument("--agents", type=int, default=300, help="heartbeating agents (300)")
    parser.add_argument(
        "--procs", type=int, default=2, help="processes for agents, and as many for API (2)"
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="probe for this long (20)")
    parser.add_argument(
        "--think-s", type=float, default=0.5, help="each API client's pause between calls (0.5)"
    )
    parser.add_argument("--jobs", type=int, default=20, help="queued jobs of 100 tasks (20)")
    parser.add_argument("--profile", action="store_true", help="py-spy the master meanwhile")
    parser.add_argument(
        "--api-process", nargs=3, metavar=("HOST", "PORT", "N"), help=argparse.SUPPRESS
    )
    parser.add_argument("--job-id", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.api_process:
        host, port, count = args.api_process
        return run_api_clients(host, int(port), int(count), args.think_s, args.job_id)
    if min(args.api_clients, args.agents, args.procs, args.jobs) < 1 or args.think_s < 0:
        parser.error("need positive --api-clients, --agents, --procs, --jobs and --think-s >= 0")
    raise_fd_limit()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with tempfile.TemporaryDirectory(prefix="farmhand-bench-") as tmp:
            profiler = None
            if args.profile:
                exe = find_py_spy()
                if exe is None:
                    parser.error("--profile: py-spy not found (pip install py-spy)")
                profiler = Profiler(exe, Path(tmp) / "profile.txt")
            result = run(args, Path(tmp), profiler)
            hot = profiler.hotspots(top=25) if profiler is not None else None
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (BenchError, OSError) as exc:
        print(f"crowd.py: error: {exc}", file=sys.stderr)
        return 1
    print_report(result)
    if hot is not None:
        print_hotspots(hot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
