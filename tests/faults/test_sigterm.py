"""SIGTERM of a master with hundreds of agents connected and tasks in flight: it exits 0 within
8 s, and the master started next has the same state: clients (ids, flags, tags), jobs and
every task, in flight ones still with the workers that hold them."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.faults.harness import Farm
from tests.integration.fakeworker import FakeWorker
from tests.support import RpcClient, wait_for

pytestmark = pytest.mark.timeout(90)

HARDWARE_AGENTS = 500
WORKERS = 20
CLEAN_EXIT_S = 8.0
CLIENT_FIELDS = ("id", "name", "role", "host", "enabled", "tags", "slots")


def hello_all(port: int, count: int) -> list[socket.socket]:
    """`count` hardware agents, each on its own connection, all said hello."""
    socks = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(count)]
    for n, sock in enumerate(socks):
        params = {"role": "hardware", "name": f"hw-{n:03d}", "proto": 1, "info": {"tags": ["hw"]}}
        sock.sendall(orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": "hello", "params": params}))
        sock.sendall(b"\n")
    for sock in socks:
        data = b""
        while b"\n" not in data:
            data += sock.recv(4096)
        assert b'"result"' in data, data
    return socks


# Measured from now (they grow while the master is down), so not part of the stored state.
TIMING_FIELDS = ("elapsed_s", "eta_s", "tasks_per_minute")


def _stored(view: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in view.items() if k not in TIMING_FIELDS}


def snapshot(api: RpcClient) -> dict[str, Any]:
    clients = api.call("clients.list", select="all")["clients"]
    jobs = api.call("jobs.list", limit=1000)["jobs"]
    return {
        "clients": sorted(({k: c[k] for k in CLIENT_FIELDS} for c in clients), key=str),
        "jobs": [_stored(job) for job in jobs],
        "tasks": {
            job["id"]: [_stored(t) for t in api.call("tasks.list", job_id=job["id"])["tasks"]]
            for job in jobs
        },
    }


def test_sigterm_with_hundreds_of_agents_exits_cleanly_and_keeps_the_state(
    tmp_path: Path,
) -> None:
    farm = Farm(tmp_path)
    try:
        run_and_restart(farm)
    finally:
        farm.stop()


def run_and_restart(farm: Farm) -> None:
    farm.start_master()
    assert farm.master is not None
    agents: list[socket.socket] = []
    workers: list[FakeWorker] = []
    try:
        agents = hello_all(farm.port, HARDWARE_AGENTS)
        workers = [FakeWorker(farm.port, f"w{n:02d}", slots=2) for n in range(WORKERS)]
        with farm.api() as api:
            api.call("clients.disable", select="hw-00*")
            done = api.call("jobs.submit", name="done", argv=["true"], frames="1-40")["job_id"]
            for worker in workers:  # 2 slots each: the 40 tasks are spread over all of them
                orders = [worker.take(), worker.take()]
                for order in orders:
                    worker.complete(order)
            wait_for(lambda: api.call("jobs.get", job_id=done)["status"] == "completed")
            busy = api.call("jobs.submit", name="busy", argv=["true"], frames="1-100")["job_id"]
            for worker in workers:  # 40 tasks in flight: half running, half dispatched
                worker.started(worker.take()["attempt"])
                worker.take()
            paused = api.call("jobs.submit", name="paused", argv=["true"], frames="1-5")["job_id"]
            api.call("jobs.pause", job_id=paused)
            gone = api.call("jobs.submit", name="gone", argv=["true"])["job_id"]
            api.call("jobs.cancel", job_id=gone)
            api.call("jobs.set_priority", job_id=busy, priority=80)
            wait_for(
                lambda: api.call("jobs.get", job_id=busy)["tasks_by_status"]["running"] == WORKERS,
                what="the running tasks",
            )
            before = snapshot(api)
        assert len(before["clients"]) == HARDWARE_AGENTS + WORKERS
        began = time.monotonic()
        farm.master.proc.send_signal(signal.SIGTERM)
        code = farm.master.proc.wait(timeout=30)
        took = time.monotonic() - began
        farm.master.close()
        farm.master = None
        assert code == 0
        assert took < CLEAN_EXIT_S, f"took {took:.1f}s to stop"
    finally:
        for sock in agents:
            sock.close()
        for worker in workers:
            worker.close()
    farm.restart_master()
    with farm.api() as api:
        after = snapshot(api)
    assert after["clients"] == before["clients"]
    assert after["jobs"] == before["jobs"]
    assert after["tasks"] == before["tasks"]
