"""Bench: N agents online at once: the master's memory and `clients.list` time.

    python bench/agents.py [--agents 10000] [--procs 4] [--heartbeat-s 5] [--profile]

Starts a real master (`master.py --port 0` on a temp data dir), then `--procs` client processes
that each open agents/procs gevent connections; every agent sends `hello` (role worker, a unique
name, proto 1, info with slots and tags), then a `heartbeat` notification every heartbeat_s
(with jitter). Once `status` shows every agent online it measures the master's RSS (before and
with the agents), `clients.list` round trips over a separate JSON-RPC connection (median, p95,
max, response bytes) and the hello throughput (agents connected per second).

Targets: RSS < 300 MB and `clients.list` < 100 ms with 10,000 agents online.
Prints a readable block with PASS/MISS per figure and one JSON line; exits 0 whether the targets
are met or not (it is a benchmark, not a test), 1 on errors.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import resource
import selectors
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

from bench.benchlib import BenchError, RpcClient, percentile, start_master, stop_all  # noqa: E402
from bench.profiler import Profiler, find_py_spy, print_hotspots  # noqa: E402
from protocol.errors import RpcError  # noqa: E402

RSS_TARGET_MB = 300.0
LIST_TARGET_MS = 100.0
LIST_CALLS = 20
# Connections a client process has in flight at once (connect + hello): keeps the burst within
# the master's listen backlog instead of measuring SYN retransmits.
CONNECT_CONCURRENCY = 64
ONLINE_TIMEOUT_S = 90.0
# Client processes start connecting at one agreed time, once they have all imported gevent.
CLIENT_START_DELAY_S = 1.0
MB = 1024 * 1024


def raise_fd_limit() -> int:
    """Soft RLIMIT_NOFILE up to the hard limit; returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


# -- client processes (gevent) ---------------------------------------------------------------
def run_agents(
    host: str, port: int, first: int, count: int, heartbeat_s: float, start_at: float
) -> int:
    """Body of one client process: `count` agents; prints one JSON report line when all
    have answered hello (or failed), then heartbeats until stdin closes."""
    import gevent
    from gevent import socket as gsocket
    from gevent.lock import BoundedSemaphore

    from farmhand.transport import Overflow, RpcTransport

    # Ctrl-C reaches the whole process group: the conductor cleans up by closing our stdin.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise_fd_limit()
    pid = os.getpid()
    gate = BoundedSemaphore(CONNECT_CONCURRENCY)
    stats: dict[str, Any] = {"ok": 0, "failed": 0, "errors": {}}

    def agent(index: int) -> None:
        name = f"bench-{index:06d}"
        hello = {
            "role": "worker",
            "name": name,
            "proto": 1,
            "info": {
                "host": f"bench-host-{index // 16:04d}",
                "pid": pid,
                "version": "bench",
                "slots": 1 + index % 4,
                "tags": ["linux", "gpu"] if index % 3 == 0 else ["linux"],
            },
        }
        try:
            with gate:
                sock = gsocket.create_connection((host, port), timeout=30)
                sock.settimeout(None)
                link = RpcTransport(sock, name=name, overflow=Overflow.WAIT)
                gevent.spawn(link.serve)
                link.call("hello", hello, timeout=30)
        except (OSError, RpcError, gevent.Timeout) as exc:
            stats["failed"] += 1
            key = type(exc).__name__ + ": " + str(exc)[:80]
            stats["errors"][key] = stats["errors"].get(key, 0) + 1
            return
        stats["ok"] += 1
        gevent.sleep(random.uniform(0.0, heartbeat_s))
        # A dropped connection ends its agent; `online_at_end` in the report shows any loss.
        with contextlib.suppress(RpcError):
            while True:
                link.notify("heartbeat", {})
                gevent.sleep(heartbeat_s * random.uniform(0.9, 1.1))

    def exit_when_parent_closes_stdin() -> None:
        fd = sys.stdin.fileno()
        while True:
            gsocket.wait_read(fd)
            if not os.read(fd, 4096):
                os._exit(0)

    gevent.spawn(exit_when_parent_closes_stdin)
    gevent.sleep(max(0.0, start_at - time.time()))  # all processes start connecting together
    started = time.time()
    agents = [gevent.spawn(agent, index) for index in range(first, first + count)]
    while stats["ok"] + stats["failed"] < count:
        gevent.sleep(0.02)
    report = {
        "ok": stats["ok"],
        "failed": stats["failed"],
        "errors": stats["errors"],
        "started": started,
        "done": time.time(),
    }
    sys.stdout.buffer.write(orjson.dumps(report, option=orjson.OPT_APPEND_NEWLINE))
    sys.stdout.flush()
    gevent.joinall(agents)
    return 0


# -- the conductor ------------------------------------------------------------------------------
def start_clients(
    host: str,
    port: int,
    agents: int,
    procs: int,
    heartbeat_s: float,
    started: list[subprocess.Popen[bytes]],
) -> list[subprocess.Popen[bytes]]:
    clients = []
    start_at = time.time() + CLIENT_START_DELAY_S
    for n in range(procs):
        first = agents * n // procs
        count = agents * (n + 1) // procs - first
        argv = [sys.executable, __file__, "--client", host, str(port), str(first), str(count)]
        argv += ["--start-at", repr(start_at)]
        argv += ["--heartbeat-s", str(heartbeat_s)]
        client = subprocess.Popen(argv, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        started.append(client)
        clients.append(client)
    return clients


def wait_online(
    rpc: RpcClient, clients: list[subprocess.Popen[bytes]], agents: int
) -> tuple[list[dict[str, Any]], int, float]:
    """Until every client process has reported and `status` shows them all online.

    Returns the reports, the online count, and when the master first showed them all online."""
    selector = selectors.DefaultSelector()
    pending: dict[int, bytes] = {}
    for client in clients:
        assert client.stdout is not None
        selector.register(client.stdout, selectors.EVENT_READ)
        pending[client.stdout.fileno()] = b""
    reports: list[dict[str, Any]] = []
    online = 0
    deadline = time.monotonic() + ONLINE_TIMEOUT_S
    try:
        while time.monotonic() < deadline:
            for key, _ in selector.select(timeout=0.1):
                fd = key.fd
                chunk = os.read(fd, 65536)
                if not chunk:
                    selector.unregister(key.fileobj)
                    if fd in pending:
                        raise BenchError("a client process exited before reporting")
                    continue
                pending[fd] += chunk
                if pending[fd].endswith(b"\n"):
                    reports.append(orjson.loads(pending.pop(fd)))
            online = rpc.call("status")["clients"]["online"]
            expected = sum(r["ok"] for r in reports) if not pending else agents
            if not pending and online >= expected:
                return reports, online, time.time()
    finally:
        selector.close()
    raise BenchError(f"timed out: {online}/{agents} online after {ONLINE_TIMEOUT_S:.0f} s")


def run(
    agents: int, procs: int, heartbeat_s: float, data_dir: Path, profiler: Profiler | None = None
) -> dict[str, Any]:
    started: list[subprocess.Popen[bytes]] = []
    rpc: RpcClient | None = None
    try:
        master, host, port = start_master(data_dir, started, "--heartbeat-s", str(heartbeat_s))
        master_ps = psutil.Process(master.pid)
        rpc = RpcClient(host, port)
        rpc.call("ping")
        time.sleep(0.5)
        rss_idle = master_ps.memory_info().rss
        cpu_before = sum(master_ps.cpu_times()[:2])

        clients = start_clients(host, port, agents, procs, heartbeat_s, started)
        reports, online, all_online_at = wait_online(rpc, clients, agents)
        connected = sum(r["ok"] for r in reports)
        failed = sum(r["failed"] for r in reports)
        errors: dict[str, int] = {}
        for report in reports:
            for key, n in report["errors"].items():
                errors[key] = errors.get(key, 0) + n
        connect_s = max(r["done"] for r in reports) - min(r["started"] for r in reports)
        connect_cpu_s = sum(master_ps.cpu_times()[:2]) - cpu_before

        # Let every agent send at least one heartbeat so its buffers are in use, then measure.
        if profiler is not None:
            profiler.start(master.pid)
        cpu_0, wall_0 = sum(master_ps.cpu_times()[:2]), time.monotonic()
        time.sleep(heartbeat_s * 1.1)
        steady_cpu = (sum(master_ps.cpu_times()[:2]) - cpu_0) / (time.monotonic() - wall_0)
        if profiler is not None:
            profiler.stop()
        rss_online = master_ps.memory_info().rss
        fds = master_ps.num_fds()
        times_ms = []
        size = 0
        for _ in range(LIST_CALLS):
            t0 = time.perf_counter()
            listed, size = rpc.call_sized("clients.list")
            times_ms.append((time.perf_counter() - t0) * 1000)
        rows = listed["clients"]
        rss_after_list = master_ps.memory_info().rss
        online_at_end = rpc.call("status")["clients"]["online"]
        rss_peak = max(rss_online, rss_after_list)
        return {
            "agents": agents,
            "procs": procs,
            "heartbeat_s": heartbeat_s,
            "connected": connected,
            "failed": failed,
            "errors": errors,
            "online": online,
            "online_at_end": online_at_end,
            "connect_s": round(connect_s, 3),
            "all_online_after_s": round(all_online_at - min(r["started"] for r in reports), 3),
            "hello_per_s": round(connected / connect_s, 1) if connect_s > 0 else None,
            "master_cpu_connect_s": round(connect_cpu_s, 2),
            "master_cpu_steady_pct": round(100 * steady_cpu, 1),
            "master_fds": fds,
            "master_nofile": master_ps.rlimit(psutil.RLIMIT_NOFILE)[0],
            "rss_idle_mb": round(rss_idle / MB, 1),
            "rss_online_mb": round(rss_online / MB, 1),
            "rss_after_list_mb": round(rss_after_list / MB, 1),
            "kb_per_agent": round((rss_online - rss_idle) / 1024 / max(connected, 1), 2),
            "list_rows": len(rows),
            "list_bytes": size,
            "list_median_ms": round(statistics.median(times_ms), 2),
            "list_p95_ms": round(percentile(times_ms, 0.95), 2),
            "list_max_ms": round(max(times_ms), 2),
            "rss_ok": rss_peak / MB < RSS_TARGET_MB,
            "list_ok": max(times_ms) < LIST_TARGET_MS,
            "all_online": failed == 0 and online == agents and online_at_end == agents,
        }
    finally:
        if rpc is not None:
            rpc.close()
        stop_all(started)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def print_report(r: dict[str, Any]) -> None:
    print(
        f"agents           {r['agents']:,} from {r['procs']} processes, "
        f"heartbeat {r['heartbeat_s']} s"
    )
    print(
        f"online           {r['online']:,} when measured, {r['online_at_end']:,} at the end; "
        f"{r['failed']:,} failed  {verdict(r['all_online'])}"
    )
    for error, n in r["errors"].items():
        print(f"                 {n:,} x {error}")
    print(
        f"hello rate       {r['hello_per_s']:,.0f} agents/s   "
        f"({r['connect_s']:.2f} s to connect all; master CPU {r['master_cpu_connect_s']:.2f} s)"
    )
    print(
        f"master CPU       {r['master_cpu_steady_pct']:.1f} % of a core with all online "
        f"({r['connected'] / r['heartbeat_s']:,.0f} heartbeats/s)"
    )
    print(f"master fds       {r['master_fds']:,} open (limit {r['master_nofile']:,})")
    print(
        f"master RSS       {r['rss_idle_mb']:.1f} MB idle -> {r['rss_online_mb']:.1f} MB online "
        f"-> {r['rss_after_list_mb']:.1f} MB after clients.list  ({r['kb_per_agent']:.1f} KB/agent)"
    )
    print(f"                 target < {RSS_TARGET_MB:.0f} MB  {verdict(r['rss_ok'])}")
    print(
        f"clients.list     median {r['list_median_ms']:.1f} ms, p95 {r['list_p95_ms']:.1f} ms, "
        f"max {r['list_max_ms']:.1f} ms over {LIST_CALLS} calls; "
        f"{r['list_rows']:,} rows, {r['list_bytes']:,} bytes"
    )
    print(f"                 target < {LIST_TARGET_MS:.0f} ms (max)  {verdict(r['list_ok'])}")
    print(orjson.dumps(r).decode())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=10_000, help="agents online (default 10000)")
    parser.add_argument("--procs", type=int, default=4, help="client processes (default 4)")
    parser.add_argument(
        "--heartbeat-s", type=float, default=5.0, help="heartbeat interval (default 5)"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="py-spy the master while the agents only heartbeat",
    )
    parser.add_argument(
        "--client", nargs=4, metavar=("HOST", "PORT", "FIRST", "COUNT"), help=argparse.SUPPRESS
    )
    parser.add_argument("--start-at", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.client:
        host, port, first, count = args.client
        return run_agents(host, int(port), int(first), int(count), args.heartbeat_s, args.start_at)
    if args.agents < 1 or not 1 <= args.procs <= args.agents or args.heartbeat_s <= 0:
        parser.error("need --agents >= 1, 1 <= --procs <= --agents, --heartbeat-s > 0")
    raise_fd_limit()
    # Ctrl-C must reach us even when started from a shell that ignores SIGINT for background jobs.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with tempfile.TemporaryDirectory(prefix="farmhand-bench-") as tmp:
            profiler = None
            if args.profile:
                exe = find_py_spy()
                if exe is None:
                    parser.error("--profile: py-spy not found (pip install py-spy)")
                profiler = Profiler(exe, Path(tmp) / "profile.txt")
            result = run(args.agents, args.procs, args.heartbeat_s, Path(tmp), profiler)
            hot = profiler.hotspots(top=25) if profiler is not None else None
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (BenchError, OSError) as exc:
        print(f"agents.py: error: {exc}", file=sys.stderr)
        return 1
    print_report(result)
    if hot is not None:
        print_hotspots(hot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
