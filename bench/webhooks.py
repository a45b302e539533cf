"""What webhook delivery adds to `jobs.submit` under load: p50/p99 without and with 5 webhooks.

Each phase starts a fresh master. A load process submits and cancels one-task jobs at `--rate`
per second (every cancel is a `job.canceled` event); meanwhile the bench times `--calls`
sequential `jobs.submit` calls. The second phase first creates 5 webhooks for `*`: three
endpoints that answer 200 at once, one that answers after 2 s, and one dead port (connection
refused). The endpoints run in a process of their own. Target: delivery adds < 1 ms to the p99.

    .venv/bin/python bench/webhooks.py [--calls 2000] [--rate 200]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from benchlib import (
    ROOT,
    BenchError,
    RpcClient,
    percentile,
    read_line,
    start_master,
    stop_all,
)

TARGET_ADDED_P99_MS = 1.0
SLOW_ANSWER_S = 2.0
WARMUP_CALLS = 200


def serve_endpoints() -> int:
    """Child mode: 3 fast endpoints and 1 slow one; prints their URLs as one JSON line."""

    class Fast(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real endpoints (Slack, Discord) offer

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    class Slow(Fast):
        def do_POST(self) -> None:
            time.sleep(SLOW_ANSWER_S)
            super().do_POST()

    servers = [ThreadingHTTPServer(("127.0.0.1", 0), Fast) for _ in range(3)]
    servers.append(ThreadingHTTPServer(("127.0.0.1", 0), Slow))
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    urls = [f"http://127.0.0.1:{server.server_port}/hook" for server in servers]
    print(json.dumps(urls), flush=True)
    sys.stdin.read()  # until the bench closes our stdin
    return 0


def generate_load(port: int, rate: float) -> int:
    """Child mode: submit and cancel one-task jobs at `rate` per second until stdin closes."""
    client = RpcClient("127.0.0.1", port)
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    interval = 1.0 / rate
    next_at = time.monotonic()
    while not stop.is_set():
        try:
            job = client.call("jobs.submit", {"name": "load", "argv": ["true"], "frames": "1"})
            client.call("jobs.cancel", {"job_id": job["job_id"]})
        except BenchError:
            break  # the master stopped: the phase is over
        next_at += interval
        delay = next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    return 0


class NoStore:
    """The dispatcher's store, doing nothing: the hub-side cost alone is measured."""

    def save_webhook(self, record: object) -> None:
        pass


def hub_costs_us(webhooks: int, events: int = 5000) -> tuple[float, float]:
    """Microseconds a `job.canceled` notice costs the call that emits it (EventBus.notify, the
    dispatcher subscribed) and then the dispatcher's loop (fanning it out to the queues), with
    `webhooks` webhooks whose queues are full (dead endpoints: drops are the steady state)."""
    from farmhand.master.events import EventBus
    from farmhand.master.webhooks.dispatcher import WebhookDispatcher

    bus = EventBus()
    dispatcher = WebhookDispatcher(NoStore(), bus, time.time)  # type: ignore[arg-type]
    bus.subscribe(dispatcher, ["notices"])
    for index in range(webhooks):
        dispatcher.create(f"http://127.0.0.1:9/{index}", ["*"], "secret", time.time())
    view = {
        "id": 12, "name": "shot-010", "status": "canceled", "priority": 50, "tags": ["gpu"],
        "created": "2026-12-02T16:00:00.000Z", "updated": "2026-12-02T16:00:01.000Z",
        "tasks_total": 10, "tasks_by_status": {"queued": 0, "canceled": 10}, "progress": 0.0,
        "argv": ["blender", "-b", "shot.blend", "-f", "{frame}"], "blocked": None,
    }  # fmt: skip
    for _ in range(1200):  # fill the queues
        bus.notify("job.canceled", view)
    dispatcher.fan_out()
    began = time.perf_counter()
    for _ in range(events):
        bus.notify("job.canceled", view)
    emitted = time.perf_counter()
    dispatcher.fan_out()
    fanned = time.perf_counter()
    return (emitted - began) / events * 1e6, (fanned - emitted) / events * 1e6


def dead_url() -> str:
    """A port nothing listens on (bound for a moment, then closed): connection refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/hook"


def child(mode: str, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(Path(__file__)), mode, *args],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )


def cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def phase(
    urls: list[str], calls: int, rate: float
) -> tuple[list[float], list[float], list[dict[str, Any]], float]:
    """jobs.submit and ping latencies (ms) under load with these webhooks, the webhooks' views
    after, and the master's CPU use (a fraction of one core) meanwhile."""
    started: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            master, host, port = start_master(Path(tmp) / "var", started)
            client = RpcClient(host, port)
            for url in urls:
                client.call("webhooks.create", {"url": url, "events": ["*"]})
            started.append(child("--load", str(port), str(rate)))
            time.sleep(1.0)  # let the load and the queues reach their steady state
            submits, pings = [], []
            cpu_before, wall_before = cpu_s(master.pid), time.monotonic()
            for index in range(WARMUP_CALLS + calls):
                began = time.perf_counter()
                client.call("jobs.submit", {"name": "timed", "argv": ["true"], "frames": "1"})
                between = time.perf_counter()
                client.call("ping")
                if index >= WARMUP_CALLS:
                    submits.append((between - began) * 1000.0)
                    pings.append((time.perf_counter() - between) * 1000.0)
            cpu = (cpu_s(master.pid) - cpu_before) / (time.monotonic() - wall_before)
            views = client.call("webhooks.list")["webhooks"]
            client.close()
            return submits, pings, views, cpu
        finally:
            stop_all(started)


def describe(name: str, method: str, latencies: list[float]) -> float:
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    print(f"{name:>17}: {method:11} p50 {p50:7.3f} ms, p99 {p99:7.3f} ms ({len(latencies)} calls)")
    return p99


def main() -> int:
    if sys.argv[1:2] == ["--serve"]:
        return serve_endpoints()
    if sys.argv[1:2] == ["--load"]:
        return generate_load(int(sys.argv[2]), float(sys.argv[3]))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000, help="timed jobs.submit calls")
    parser.add_argument("--rate", type=float, default=100.0, help="load: canceled jobs per s")
    parser.add_argument(
        "--rounds", type=int, default=2, help="phases without and with webhooks, alternated"
    )
    args = parser.parse_args()
    endpoints = child("--serve")
    try:
        assert endpoints.stdout is not None
        urls = [*json.loads(read_line(endpoints.stdout, 10.0, "the endpoints")), dead_url()]
        print(f"load: {args.rate:g} job.canceled events/s; webhooks: 3 fast, 1 slow (2 s), 1 dead")
        results: dict[bool, tuple[list[float], list[float]]] = {False: ([], []), True: ([], [])}
        views: list[dict[str, Any]] = []
        cpu_shares: dict[bool, list[float]] = {False: [], True: []}
        for round_number in range(args.rounds):
            for hooked in (False, True):
                submits, pings, seen, cpu = phase(urls if hooked else [], args.calls, args.rate)
                print(
                    f"  round {round_number + 1} {'with' if hooked else 'without'} webhooks: "
                    f"submit p99 {percentile(submits, 0.99):.3f} ms, "
                    f"ping p99 {percentile(pings, 0.99):.3f} ms, master CPU {cpu:.0%}",
                    flush=True,
                )
                cpu_shares[hooked].append(cpu)
                results[hooked][0].extend(submits)
                results[hooked][1].extend(pings)
                views = seen if hooked else views
    except BenchError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    finally:
        stop_all([endpoints])
    p99 = {}
    for hooked, name in ((False, "without webhooks"), (True, "with 5 webhooks")):
        p99[hooked, "submit"] = describe(name, "jobs.submit", results[hooked][0])
        p99[hooked, "ping"] = describe(name, "ping", results[hooked][1])
    print("the last phase's webhooks:")
    for view in views:
        print(
            f"  webhook {view['id']}: delivered {view['delivered']}, queued {view['queued']}, "
            f"dropped {view['dropped']}, last {view['last_status']} {view['last_error'] or ''}"
        )
    cpus = {hooked: sum(c) / len(c) for hooked, c in cpu_shares.items()}
    posts_per_s = args.rate * 5
    extra_cpu = cpus[True] - cpus[False]
    print(
        f"master CPU: {cpus[False]:.0%} of a core without webhooks, {cpus[True]:.0%} with "
        f"(~{posts_per_s:g} POSTs/s tried): ~{extra_cpu / posts_per_s * 1e6:.0f} µs per POST"
    )
    logging.disable(logging.WARNING)  # the full queues' drop warnings
    (base, _), (emit, fan) = hub_costs_us(0), hub_costs_us(5)
    print(
        f"a job.canceled notice costs the call that emits it {base:.1f} µs without webhooks, "
        f"{emit:.1f} µs with 5; fanning it out to their queues costs the loop {fan:.1f} µs"
    )
    target = f"< {TARGET_ADDED_P99_MS:g} ms"
    for method in ("submit", "ping"):
        added = p99[True, method] - p99[False, method]
        verdict = "meets" if added < TARGET_ADDED_P99_MS else "misses"
        print(f"delivery adds {added:+.3f} ms to the {method} p99 ({verdict} the {target} target)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
