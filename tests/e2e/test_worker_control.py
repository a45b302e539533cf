"""Worker control end to end, through real TCP: a real master, real worker.py processes (bare
and under a real node.py) and the real `farmhand` command. A worker stopped `now` leaves no
task process behind and its task runs elsewhere; one stopped `idle` finishes first; the exit
codes (76 stop, 75 restart) and the node's answer to them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import psutil
import pytest

from farmhand.agent.exits import EXIT_RESTART, EXIT_STOP
from tests.e2e.test_node import NODE, Node, worker_agent
from tests.support import MasterProcess, Program, RpcClient, farmhand, wait_for

pytestmark = pytest.mark.timeout(90)


def start_worker(tmp_path: Path, master: MasterProcess, name: str) -> Program:
    return Program(
        "worker.py",
        *("--master", master.address, "--name", name, "--work-dir", str(tmp_path / name)),
        "--kill-grace-s",
        "2",
        log_path=tmp_path / f"{name}.log",
    )


def online(api: RpcClient, name: str) -> bool:
    return any(c["name"] == name and c["online"] for c in api.call("clients.list")["clients"])


def tasks(api: RpcClient, job_id: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = api.call("tasks.list", job_id=job_id)["tasks"]
    return rows


def group_alive(pgid: int) -> bool:
    return any(_pgid(p) == pgid for p in psutil.process_iter() if p.status() != "zombie")


def _pgid(process: psutil.Process) -> int | None:
    try:
        return os.getpgid(process.pid)
    except OSError:
        return None


def test_stop_now_kills_the_task_group_and_the_task_runs_elsewhere(
    tmp_path: Path, master: MasterProcess, api: RpcClient
) -> None:
    marker = tmp_path / "first-run.pid"
    # The first run writes its pid and sleeps (with a child in its group); a later run ends.
    script = (
        f"if [ -e {marker} ]; then exit 0; fi; "
        f"echo $$ > {marker}.tmp; mv {marker}.tmp {marker}; sleep 600 & wait"
    )
    w1 = start_worker(tmp_path, master, "w1")
    try:
        wait_for(lambda: online(api, "w1"), what="w1 online")
        job = api.call("jobs.submit", name="long", argv=["sh", "-c", script])["job_id"]
        pgid = int(wait_for(lambda: marker.exists() and marker.read_text().strip(), what="task"))
        assert group_alive(pgid)
        stopped = farmhand("stop", "w1", "--when", "now", master=master)
        assert stopped.returncode == 0, stopped.stderr
        assert "stop (now) ordered: w1" in stopped.stdout
        assert "requeued 1 task" in stopped.stdout
        assert w1.proc.wait(30) == EXIT_STOP
        assert not group_alive(pgid)  # the task's process group is gone, its child too
        (task,) = tasks(api, job)
        assert (task["status"], task["attempts"]) == ("queued", 0)
    finally:
        w1.close()
    w2 = start_worker(tmp_path, master, "w2")
    try:
        wait_for(lambda: tasks(api, job)[0]["status"] == "completed", what="the rerun")
        assert tasks(api, job)[0]["worker"] == "w2"
    finally:
        w2.stop()


def test_stop_idle_finishes_the_running_task_then_exits(
    tmp_path: Path, master: MasterProcess, api: RpcClient
) -> None:
    started, go = tmp_path / "started", tmp_path / "go"
    script = f"touch {started}; while [ ! -e {go} ]; do sleep 0.05; done"
    w1 = start_worker(tmp_path, master, "w1")
    try:
        wait_for(lambda: online(api, "w1"), what="w1 online")
        job = api.call("jobs.submit", name="two", argv=["sh", "-c", script], frames="1-2")["job_id"]
        wait_for(started.exists, what="the first task")
        # Busy once a heartbeat lists the attempt (the table's status comes from heartbeats).
        wait_for(lambda: api.call("clients.get", name="w1")["running"], what="a busy beat")
        result = api.call("clients.stop", select="w1", when="idle")
        assert result == {"ordered": ["w1"], "skipped": [], "requeued": [], "when": "idle"}
        listed = farmhand("clients", "w1", master=master)
        assert "busy, stop when idle" in listed.stdout
        assert w1.proc.poll() is None  # still running its task
        go.touch()
        assert w1.proc.wait(30) == EXIT_STOP
        statuses = sorted(task["status"] for task in tasks(api, job))
        assert statuses == ["completed", "queued"]  # the second one got no new start on w1
    finally:
        w1.close()


def test_a_bare_worker_exits_75_on_restart(
    tmp_path: Path, master: MasterProcess, api: RpcClient
) -> None:
    w1 = start_worker(tmp_path, master, "w1")
    try:
        wait_for(lambda: online(api, "w1"), what="w1 online")
        api.call("clients.restart", select="w1", when="now")
        assert w1.proc.wait(30) == EXIT_RESTART
    finally:
        w1.close()


def test_host_facts_schedule_and_prune_through_the_cli(
    tmp_path: Path, master: MasterProcess, api: RpcClient
) -> None:
    w1 = start_worker(tmp_path, master, "w1")
    try:
        wait_for(lambda: online(api, "w1"), what="w1 online")
        facts = wait_for(
            lambda: api.call("clients.get", name="w1")["host_info"].get("load"), what="a beat"
        )
        assert len(facts) == 3
        got = api.call("clients.get", name="w1")["host_info"]
        assert got["cpus"] == os.cpu_count() and got["mem_total_bytes"] > 0
        shown = farmhand("inspect", "w1", master=master)
        assert f"cpus {os.cpu_count()}" in shown.stdout and "schedule: none" in shown.stdout
        windows = "mon-sun 00:00-24:00"  # always asleep: it takes no task
        scheduled = farmhand("schedule", "w1", "--set", windows, master=master)
        assert "schedule 'mon-sun' for w1" in scheduled.stdout, scheduled.stderr
        job = api.call("jobs.submit", name="quick", argv=["true"])["job_id"]
        assert "mon-sun (asleep)" in farmhand("clients", master=master).stdout
        assert tasks(api, job)[0]["status"] == "queued"
        bad = farmhand("schedule", "w1", "--set", "mon 9-5", master=master)
        assert bad.returncode == 1 and "HH:MM-HH:MM" in bad.stderr
        farmhand("schedule", "w1", "--clear", master=master)
        wait_for(lambda: tasks(api, job)[0]["status"] == "completed", what="the task")
    finally:
        w1.stop()
    wait_for(lambda: not online(api, "w1"), what="w1 offline")
    pruned = farmhand("prune", "--offline-for", "0", master=master)
    assert pruned.stdout.strip() == "forgot 1 client: w1", pruned.stderr
    assert api.call("clients.list")["clients"] == []


def test_restart_under_a_node_restarts_the_worker_and_stop_leaves_it_stopped(
    tmp_path: Path, master: MasterProcess, api: RpcClient
) -> None:
    node = Node(tmp_path, master.address, worker_agent("nw1", tmp_path))
    try:

        def proc() -> dict[str, Any]:
            rows = api.call("procs.list")["procs"]
            return next((r for r in rows if r["node"] == NODE and r["agent"] == "nw1"), {})

        wait_for(lambda: online(api, "nw1") and proc().get("state") == "running", what="nw1")
        first_pid = proc()["pid"]
        api.call("clients.restart", select="nw1", when="idle")
        wait_for(
            lambda: proc().get("pid") not in (None, first_pid) and online(api, "nw1"),
            timeout=30,
            what="the node to start nw1 again",
        )
        assert proc()["last_exit"] == EXIT_RESTART
        assert not psutil.pid_exists(first_pid) or psutil.Process(first_pid).status() == "zombie"
        api.call("clients.stop", select="nw1", when="now")
        wait_for(lambda: proc().get("state") == "exited", timeout=30, what="nw1 exited")
        assert proc()["last_exit"] == EXIT_STOP and proc()["pid"] is None
        assert not online(api, "nw1")
    finally:
        node.stop()
