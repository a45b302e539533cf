"""Why tasks end, through a real master and a real worker running real processes: a non-zero
exit, a signal, a timeout, a program that cannot start, a cancel, and the worker killed under a
running task. Each gets its `reason`, its human `error` line and its log line, and the console
and the `farmhand` command show them with the attempts made and the elapsed time."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from pathlib import Path

import pytest

from tests.integration.fakeworker import job_view, submit, tasks_of, wait_job
from tests.support import ConsoleClient, MasterProcess, Program, RpcClient, farmhand, wait_for

pytestmark = pytest.mark.timeout(120)

PY = sys.executable


def only_task(api: RpcClient, job_id: int) -> dict:
    (task,) = tasks_of(api, job_id)
    return task


def wait_running(api: RpcClient, job_id: int) -> dict:
    return wait_for(
        lambda: (task := only_task(api, job_id))["status"] == "running" and task,
        timeout=20,
        what=f"job {job_id}'s task to run",
    )


def test_exit_signal_timeout_and_cannot_start_through_a_real_worker(
    master: MasterProcess, worker: Program, api: RpcClient
) -> None:
    jobs = {
        "exit": submit(api, "exit", argv=[PY, "-c", "raise SystemExit(3)"], max_attempts=1),
        "signal": submit(
            api,
            "signal",
            argv=[PY, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"],
            max_attempts=1,
        ),
        "timeout": submit(api, "timeout", argv=["sleep", "60"], timeout_s=1, max_attempts=1),
        "cannot-start": submit(api, "cannot", argv=["/no/such/binary"], max_attempts=1),
    }
    expected = {
        "exit": ("exit code 3", 3),
        "signal": ("killed by signal 9 (SIGKILL)", -9),
        "timeout": ("timed out after 1 s (its timeout_s)", -15),
        "cannot-start": ("cannot start: No such file or directory: /no/such/binary", None),
    }
    for reason, job_id in jobs.items():
        view = wait_job(api, job_id, "failed", timeout=30)
        assert view["eta_s"] is None
        assert (view["elapsed_s"] is None) is (reason == "cannot-start")  # it never started
        task = only_task(api, job_id)
        error, exit_code = expected[reason]
        assert (task["reason"], task["error"], task["exit_code"]) == (reason, error, exit_code)
        assert task["attempts_made"] == 1 and task["attempts"] == 1
        log = api.call("tasks.log", task_id=task["id"])["text"]
        assert f"ended: {error}" in log and "None" not in log, log
    timed_out = only_task(api, jobs["timeout"])
    # From the master's stamps: its start is when task.started arrived, a little after the spawn.
    assert timed_out["elapsed_s"] >= 0.8 and timed_out["elapsed_s"] == timed_out["duration_s"]

    # The console and the `farmhand` command show the same, a row per task.
    with ConsoleClient(master.port) as console:
        text = console.command(f"tasks {jobs['signal']}")
    header, row = text.splitlines()[:2]
    assert header.split()[-2:] == ["REASON", "ERROR"]
    assert row.split()[5] == "1" and row.endswith("signal  killed by signal 9 (SIGKILL)")
    shown = farmhand("tasks", str(jobs["timeout"]), master=master).stdout
    assert "timeout  timed out after 1 s (its timeout_s)" in shown.splitlines()[1]
    detail = farmhand("job", str(jobs["exit"]), master=master).stdout
    assert "  timing    elapsed " in detail and ", eta -, " in detail


def test_a_cancel_and_a_lost_worker_through_a_real_worker(
    tmp_path: Path, master: MasterProcess, worker: Program, api: RpcClient
) -> None:
    script = "import os, time; print(os.getpid(), flush=True); time.sleep(60)"
    canceled = submit(api, "cancel-me", argv=[PY, "-c", script])
    wait_running(api, canceled)
    api.call("jobs.cancel", job_id=canceled)
    task = only_task(api, canceled)
    assert (task["status"], task["reason"], task["error"]) == (
        "canceled",
        "canceled",
        "job canceled",
    )
    assert task["attempts_made"] == 1 and task["elapsed_s"] is not None

    lost = submit(api, "lose-me", argv=[PY, "-c", script])
    running = wait_running(api, lost)
    pid = int(
        wait_for(
            lambda: next(
                (
                    line
                    for line in api.call("tasks.log", task_id=running["id"])["text"].splitlines()
                    if line.isdigit()
                ),
                None,
            ),
            what="its pid",
        )
    )
    assert job_view(api, lost)["elapsed_s"] is not None
    worker.kill()  # SIGKILL: the worker vanishes with its task
    try:
        task = wait_for(
            lambda: (view := only_task(api, lost))["status"] == "queued" and view,
            timeout=20,
            what="the lost task back in the queue",
        )
        assert (task["reason"], task["error"]) == ("lost", "worker w1 lost")
        assert (task["attempts"], task["attempts_made"]) == (0, 0)  # a lost worker costs none
        assert "reason" in farmhand("--json", "tasks", str(lost), master=master).stdout
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)  # its task, orphaned by the SIGKILL
