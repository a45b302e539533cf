"""Dashboard page and API timings with a big farm: 10,000 one-task jobs, each with a preview,
and 1,000 clients.

Starts a master, submits the jobs over JSON-RPC (pipelined), stops it, puts a real 640x360 JPEG
preview for every job into its data dir (the preview store's own file layout) and starts it
again (timing the load), opens 1,000 connections that say hello as workers, starts `python -m
dashboard`, logs in over HTTP and times every page, the preview routes and the JSON endpoints
(median and p95 per path, PASS/MISS against the target p95 < 200 ms).

    .venv/bin/python bench/dashboard.py [--jobs 10000] [--clients 1000] [--rounds 50]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import io
import json
import re
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from farmhand.blocking import Connection  # noqa: E402
from tests.support import MasterProcess, RpcClient  # noqa: E402

TARGET_P95_MS = 200.0
BATCH = 500


def submit_jobs(port: int, count: int) -> None:
    """jobs.submit pipelined in batches: write BATCH requests, then read BATCH replies."""
    connection = Connection(socket.create_connection(("127.0.0.1", port)), name="master")
    with contextlib.closing(connection):
        for start in range(0, count, BATCH):
            calls = [
                ("jobs.submit", {"name": f"bench-{start + i}", "argv": ["true"]})
                for i in range(min(BATCH, count - start))
            ]
            connection.call_many(calls, timeout=120)


def write_previews(data_dir: Path, count: int) -> int:
    """A real 640x360 JPEG as the preview of jobs 1..count, named as PreviewStore names them
    (`previews/<job>/<version>_t<task>_f<frame>_<w>x<h>.jpg`); returns its size in bytes."""
    from PIL import Image, ImageDraw

    frame = Image.linear_gradient("L").resize((640, 360)).convert("RGB")
    ImageDraw.Draw(frame).text((20, 20), "bench frame", fill="white", font_size=48)
    out = io.BytesIO()
    frame.save(out, "JPEG", quality=80)
    data = out.getvalue()
    for job_id in range(1, count + 1):
        folder = data_dir / "previews" / str(job_id)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{job_id}_t{job_id}_f1_640x360.jpg").write_bytes(data)
    return len(data)


def connect_clients(port: int, count: int) -> list[Connection]:
    """count connections that said hello as (idle, disabled-from-nothing) workers."""
    connections = []
    for i in range(count):
        connection = Connection(socket.create_connection(("127.0.0.1", port)), name=f"fake-{i}")
        hello = {"role": "worker", "name": f"fake-{i:04d}", "proto": 1, "info": {"slots": 0}}
        connection.call("hello", hello, timeout=30)
        connections.append(connection)
    return connections


class Http:
    """A keep-alive HTTP client with the dashboard's cookies (a jar: the login sets two, the
    device cookie and the session cookie, in separate Set-Cookie headers)."""

    def __init__(self, url: str):
        parts = urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, body: bytes | None = None, **headers: str):
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        self.conn.request(method, path, body=body, headers=headers)
        response = self.conn.getresponse()
        data = response.read()
        for header in response.msg.get_all("Set-Cookie") or []:
            name, _, value = header.split(";")[0].partition("=")
            self.cookies[name.strip()] = value.strip().strip('"')
        return response.status, data

    def login(self, username: str, password: str) -> None:
        _, data = self.request("GET", "/api/session")
        csrf = json.loads(data)["csrf"]
        body = json.dumps({"username": username, "password": password}).encode()
        status, data = self.request(
            "POST",
            "/api/login",
            body,
            **{"Content-Type": "application/json", "X-CSRF-Token": csrf},
        )
        assert status == 200, data


def timings(client: Http, path: str, rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        start = time.perf_counter()
        status, _ = client.request("GET", path)
        out.append((time.perf_counter() - start) * 1000)
        assert status == 200, (path, status)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "var"
        flags = ("--heartbeat-s", "120", "--log-level", "info")
        master = MasterProcess(data_dir, *flags)
        dashboard = None
        try:
            with RpcClient(master.port) as rpc:
                rpc.call("users.create", username="bench", password="bench-password", admin=True)
            started = time.perf_counter()
            submit_jobs(master.port, args.jobs)
            print(f"submitted {args.jobs} jobs in {time.perf_counter() - started:.1f} s")
            master.stop()
            size = write_previews(data_dir, args.jobs)
            started = time.perf_counter()
            master = MasterProcess(data_dir, *flags)
            print(
                f"restarted with {args.jobs} previews of {size} bytes "
                f"in {time.perf_counter() - started:.1f} s"
            )
            started = time.perf_counter()
            socks = connect_clients(master.port, args.clients)
            print(f"connected {len(socks)} clients in {time.perf_counter() - started:.1f} s")
            dashboard = subprocess.Popen(
                [sys.executable, "-m", "dashboard", "--master", master.address, "--port", "0"],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
            assert dashboard.stdout is not None
            url = re.search(r"(http://\S+?)/? ", dashboard.stdout.readline().decode()).group(1)
            client = Http(url)
            client.login("bench", "bench-password")
            print(f"\n{'GET':52} {'p50':>8} {'p95':>8}   (ms, {args.rounds} rounds)")
            worst = 0.0
            middle = max(1, args.jobs // 2)
            page_ids = ",".join(str(i) for i in range(args.jobs, max(0, args.jobs - 50), -1))
            for path in [
                # the pages
                "/",
                "/clients",
                "/jobs",
                "/jobs?status=queued&offset=9000",
                f"/jobs/{middle}",
                "/taps",
                "/people",
                "/readings",
                "/audit",
                "/admin",
                "/clients/fake-0500",
                "/webhooks",
                "/sessions",
                "/taps/kiosk",
                # what the pages fetch
                f"/jobs/{middle}/preview",
                f"/jobs/previews?ids={page_ids}",
                "/api/jobs.previews?limit=1",
                "/api/overview",
                "/api/jobs.list?limit=50",
                "/api/jobs.list?limit=50&offset=5000",
                "/api/clients.list",
                "/api/clients.list?select=online%20fake-00*",
                "/metrics",
            ]:
                samples = timings(client, path, args.rounds)
                p95 = statistics.quantiles(samples, n=20)[18]
                worst = max(worst, p95)
                verdict = "PASS" if p95 < TARGET_P95_MS else "MISS"
                print(f"{path[:52]:52} {statistics.median(samples):8.1f} {p95:8.1f}   {verdict}")
            verdict = "PASS" if worst < TARGET_P95_MS else "MISS"
            print(f"\nworst p95 {worst:.1f} ms (target < {TARGET_P95_MS:.0f} ms): {verdict}")
            for connection in socks:
                connection.close()
        finally:
            if dashboard is not None:
                dashboard.terminate()
                dashboard.wait(10)
            master.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
