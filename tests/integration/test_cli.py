"""The `farmhand` command (farmhand/cli, README.md) as a real process against a real master:
submit (and --wait with a real worker: exit 0, 1), jobs, job, call, --json, the environment,
--version, and exit status 2 for bad usage."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT, MasterProcess, Program, RpcClient, farmhand

pytestmark = pytest.mark.timeout(120)


def test_submit_prints_the_job_id_and_jobs_and_job_show_it(master: MasterProcess) -> None:
    submitted = farmhand(
        "submit", "render", "--frames", "1-4", "--chunk", "2", "--priority", "70",
        "--tags", "gpu,linux", "--", "render", "-f", "{frame}", "--json", master=master,
    )  # fmt: skip
    assert submitted.returncode == 0, submitted.stderr
    job_id = int(submitted.stdout.strip())
    with RpcClient(master.port) as rpc:
        view = rpc.call("jobs.get", job_id=job_id)
    assert view["argv"] == ["render", "-f", "{frame}", "--json"]  # after --: the program's
    assert (view["priority"], view["tags"], view["tasks_total"]) == (70, ["gpu", "linux"], 2)

    listed = farmhand("jobs", master=master)
    assert listed.returncode == 0
    header, row, total = listed.stdout.splitlines()
    assert header.split() == ["ID", "STATUS", "PRIO", "PROGRESS", "TASKS", "NAME"]
    assert row.split()[:3] == [str(job_id), "queued", "70"] and row.endswith("render")
    assert total == "1 of 1 jobs"
    assert farmhand("jobs", "failed", master=master).stdout.startswith("no jobs")

    shown = farmhand("job", str(job_id), master=master)
    assert shown.returncode == 0
    assert shown.stdout.splitlines()[0] == f"job {job_id}"
    assert "  status    queued" in shown.stdout and "0/2 done" in shown.stdout


def test_json_everywhere_errors_too(master: MasterProcess) -> None:
    submitted = farmhand("--json", "submit", "j", "--", "true", master=master)
    assert json.loads(submitted.stdout) == {"job_id": 1, "tasks": 1}
    listed = json.loads(farmhand("jobs", "--json", master=master).stdout)
    assert listed["total"] == 1 and listed["jobs"][0]["name"] == "j"
    assert json.loads(farmhand("job", "1", "--json", master=master).stdout)["id"] == 1
    missing = farmhand("job", "99", "--json", master=master)
    assert missing.returncode == 1 and missing.stderr == ""
    assert json.loads(missing.stdout)["error"]["code"] == -32004


def test_call_any_method_with_json_params(master: MasterProcess) -> None:
    assert farmhand("call", "ping", master=master).stdout.strip() == '"pong"'
    called = farmhand("call", "clients.list", '{"select": "all"}', master=master)
    assert called.returncode == 0 and json.loads(called.stdout) == {"clients": []}
    refused = farmhand("call", "clients.list", '{"selct": "all"}', master=master)
    assert refused.returncode == 1
    assert refused.stderr.startswith("farmhand call: ") and "selct" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1


def test_submit_wait_exits_0_when_the_job_completes_and_1_when_it_fails(
    master: MasterProcess, worker: Program
) -> None:
    done = farmhand(
        "submit", "ok", "--frames", "1-3", "--wait", "--",
        sys.executable, "-c", "print('frame {frame}')", master=master,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    job_id, last = done.stdout.splitlines()
    assert last == f"job {job_id} completed: 3/3 done"
    assert "100%" in done.stderr.splitlines()[-1]  # piped: a plain line per change
    failed = farmhand("submit", "bad", "--wait", "--", "false", master=master)
    assert failed.returncode == 1
    assert failed.stdout.splitlines()[-1].endswith("failed: 0/1 done, 1 failed")


def test_submit_wait_exits_1_when_the_job_is_canceled(master: MasterProcess) -> None:
    waiting = subprocess.Popen(
        [sys.executable, "-m", "farmhand.cli", "--master", master.address, "submit", "x",
         "--tags", "nowhere", "--wait", "--", "true"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert waiting.stdout is not None
        job_id = int(waiting.stdout.readline())
        with RpcClient(master.port) as rpc:
            rpc.call("jobs.cancel", job_id=job_id)
        assert waiting.wait(30) == 1
        assert waiting.stdout.read().strip() == f"job {job_id} canceled: 0/1 done, 1 canceled"
    finally:
        waiting.kill()
        waiting.communicate()


def test_the_environment_gives_the_master_and_the_key(tmp_path: Path) -> None:
    master = MasterProcess(tmp_path / "var", "--require-key")
    try:
        admin = (master.data_dir / "admin.key").read_text().strip()
        env = {"FARMHAND_MASTER": master.address}
        refused = farmhand("jobs", env=env)
        assert refused.returncode == 1 and "key" in refused.stderr
        assert farmhand("jobs", env={**env, "FARMHAND_KEY": admin}).returncode == 0
        assert farmhand("--key", admin, "jobs", env=env).returncode == 0
    finally:
        master.stop()


def test_no_master_is_one_line_and_exit_1() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = farmhand("--master", f"127.0.0.1:{port}", "jobs")
    assert result.returncode == 1
    assert result.stderr.startswith("farmhand: no master answers") and result.stdout == ""


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["frobnicate"],
        ["submit", "no-argv"],
        ["submit", "x", "--chunk", "many", "--", "true"],
        ["submit", "x", "--tags", ",", "--", "true"],
        ["job", "seven"],
        ["call", "ping", "{not json"],
        ["call", "ping", "[1, 2]"],
        ["--master", "http://farm:6000", "jobs"],
        ["--ca", "/no/such/ca.pem", "jobs"],
    ],
)
def test_bad_usage_is_one_line_and_exit_2(master: MasterProcess, args: list[str]) -> None:
    result = farmhand(*args, env={"FARMHAND_MASTER": master.address})
    assert result.returncode == 2, result
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_version_and_help() -> None:
    version = farmhand("--version")
    assert version.returncode == 0 and version.stdout.startswith("farmhand ")
    helped = farmhand("submit", "--help")
    assert helped.returncode == 0 and "examples:" in helped.stdout and "-- ARGV" in helped.stdout
