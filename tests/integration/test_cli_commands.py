"""The rest of the `farmhand` command against a real master and worker: tasks, log (and -f on
a running task), clients, enable/disable, the operator actions, templates, submit with a
template and --after, watch, the config file, errors as JSON, --help per command, and the
progress bar on a real terminal (a pty)."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from farmhand.cli.main import COMMANDS
from tests.support import ROOT, MasterProcess, Program, RpcClient, farmhand, wait_for

pytestmark = pytest.mark.timeout(120)


def test_tasks_and_log_and_log_follow_a_running_task(
    tmp_path: Path, master: MasterProcess, worker: Program
) -> None:
    gate = tmp_path / "gate"
    script = (
        "import os, sys, time\n"
        "print('first', flush=True)\n"
        f"while not os.path.exists({str(gate)!r}): time.sleep(0.05)\n"
        "print('second', flush=True)\n"
    )
    job_id = int(
        farmhand("submit", "slow", "--", sys.executable, "-c", script, master=master).stdout
    )
    with RpcClient(master.port) as rpc:
        task_id = rpc.call("tasks.list", job_id=job_id)["tasks"][0]["id"]
        wait_for(
            lambda: "first" in rpc.call("tasks.log", task_id=task_id)["text"], what="first line"
        )
    follow = subprocess.Popen(
        [sys.executable, "-m", "farmhand.cli", "--master", master.address,
         "log", str(task_id), "-f"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert follow.stdout is not None
        lines = []
        while "first" not in "".join(lines):
            lines.append(follow.stdout.readline())
        gate.touch()  # the task goes on only now: -f must show what comes after
        out, err = follow.communicate(timeout=30)
    finally:
        follow.kill()
    assert follow.returncode == 0, err
    text = "".join(lines) + out
    assert text.index("first") < text.index("second") and "ended: exit code 0" in text

    shown = farmhand("tasks", str(job_id), master=master)
    header, row, count = shown.stdout.splitlines()
    assert header.split()[:4] == ["TASK", "#", "FRAMES", "STATUS"]
    assert row.split()[:5] == [str(task_id), "0", "-", "completed", "w1"] and count == "1 task"
    tail = farmhand("log", str(task_id), "-n", "1", master=master)
    assert tail.stdout.strip().endswith(
        "exit code 0 after " + tail.stdout.split("after ")[-1].strip()
    )
    assert len(tail.stdout.strip().splitlines()) == 1
    assert json.loads(farmhand("--json", "log", str(task_id), master=master).stdout)["complete"]


def test_clients_enable_and_disable_say_what_changed(
    master: MasterProcess, worker: Program
) -> None:
    with RpcClient(master.port) as rpc:
        wait_for(lambda: rpc.call("clients.list")["clients"], what="the worker")
    listed = farmhand("clients", "role=worker", master=master)
    assert listed.stdout.splitlines()[0].split()[:4] == ["NAME", "ROLE", "HOST", "STATUS"]
    assert listed.stdout.splitlines()[-1] == "1 client (1 online, 0 disabled)"
    assert farmhand("disable", "w*", master=master).stdout.strip() == "disabled 1: w1"
    assert farmhand("disable", "w1", master=master).stdout.strip() == "already disabled: w1"
    assert "NO" in farmhand("clients", master=master).stdout
    assert farmhand("enable", "w1", master=master).stdout.strip() == "enabled 1: w1"
    nothing = farmhand("--json", "enable", "zzz*", master=master)
    assert json.loads(nothing.stdout) == {"matched": [], "changed": []}


def test_operator_actions_change_the_job(master: MasterProcess) -> None:
    job = farmhand("submit", "held", "--tags", "nowhere", "--", "true", master=master).stdout
    job_id = job.strip()
    assert farmhand("pause", job_id, master=master).stdout.strip() == (
        f"job {job_id} (held) is now paused"
    )
    assert farmhand("resume", job_id, master=master).stdout.strip().endswith("is now queued")
    assert farmhand("priority", job_id, "90", master=master).stdout.strip().endswith("now 90")
    assert farmhand("cancel", job_id, master=master).stdout.strip().endswith("is now canceled")
    requeued = json.loads(farmhand("--json", "requeue", job_id, master=master).stdout)
    assert requeued["status"] == "queued" and requeued["priority"] == 90
    refused = farmhand("--json", "priority", job_id, "900", master=master)
    assert refused.returncode == 1 and json.loads(refused.stdout)["error"]["code"] == -32602


def test_submit_with_a_template_its_typed_params_and_after(master: MasterProcess) -> None:
    first = farmhand("submit", "render", "--tags", "nowhere", "--", "true", master=master)
    submitted = farmhand(
        "--json", "submit", "movie", "--template", "ffmpeg", "--after", first.stdout.strip(),
        "-p", "input=/farm/r/####.png", "-p", "output=/farm/movie.mp4", "-p", "fps=12.5",
        "-p", "args=-movflags,+faststart", master=master,
    )  # fmt: skip
    assert submitted.returncode == 0, submitted
    with RpcClient(master.port) as rpc:
        view = rpc.call("jobs.get", job_id=json.loads(submitted.stdout)["job_id"])
    argv = view["argv"]
    assert argv[argv.index("-framerate") + 1] == "12.5" and argv[argv.index("-i") + 1] == (
        "/farm/r/%04d.png"
    )
    assert argv[-3:] == ["-movflags", "+faststart", "/farm/movie.mp4"]
    assert view["depends_on"] == [int(first.stdout)] and view["outputs"] == "/farm/movie.mp4"

    shown = farmhand("job", str(view["id"]), master=master).stdout
    assert (
        "  outputs   /farm/movie.mp4" in shown and f"  after     [{first.stdout.strip()}]" in shown
    )

    typo = farmhand("submit", "m", "--template", "ffmpeg", "-p", "fps=fast", master=master)
    assert typo.returncode == 2 and "not a number" in typo.stderr
    unknown = farmhand("--json", "submit", "m", "--template", "maya", master=master)
    assert unknown.returncode == 1 and unknown.stderr == ""
    assert json.loads(unknown.stdout)["error"]["data"]["reason"] == "no_such_template"
    listed = farmhand("templates", master=master).stdout
    assert {"command:", "blender:", "ffmpeg:"} <= {line.split()[0] for line in listed.splitlines()}


def test_watch_shows_jobs_and_workers(master: MasterProcess, worker: Program) -> None:
    farmhand("submit", "w", "--tags", "nowhere", "--", "true", master=master)
    with RpcClient(master.port) as rpc:
        wait_for(lambda: rpc.call("clients.list")["clients"], what="the worker")
    snapshot = json.loads(farmhand("--json", "watch", "--count", "1", master=master).stdout)
    assert [job["name"] for job in snapshot["jobs"]] == ["w"]
    assert [w["name"] for w in snapshot["workers"]] == ["w1"]
    text = farmhand("watch", "--count", "1", master=master).stdout
    assert "[--------------------]   0.0%" in text and "1 workers (1 online)" in text


def test_the_config_file_gives_the_master_and_key_after_flags_and_env(
    tmp_path: Path,
) -> None:
    master = MasterProcess(tmp_path / "var", "--require-key")
    try:
        admin = (master.data_dir / "admin.key").read_text().strip()
        config = tmp_path / "xdg" / "farmhand" / "config.toml"
        config.parent.mkdir(parents=True)
        config.write_text(f'master = "{master.address}"\nkey = "{admin}"\n')
        env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "FARMHAND_MASTER": "", "FARMHAND_KEY": ""}
        assert farmhand("jobs", env=env).stdout.startswith("no jobs")
        # The environment wins over the file.
        assert farmhand("jobs", env={**env, "FARMHAND_KEY": "fhk_wrong"}).returncode == 1
        config.write_text("master = 6000\n")
        bad = farmhand("jobs", env=env)
        assert bad.returncode == 2 and "master must be a string" in bad.stderr
        other = tmp_path / "other.toml"
        other.write_text(f'master = "{master.address}"\nkey = "{admin}"\n')
        assert farmhand("--config", str(other), "jobs", env=env).returncode == 0
        missing = farmhand("--config", str(tmp_path / "none.toml"), "jobs", env=env)
        assert missing.returncode == 2 and "does not exist" in missing.stderr
    finally:
        master.stop()


@pytest.mark.parametrize("command", [c.name for c in COMMANDS])
def test_every_command_has_help_with_examples(command: str) -> None:
    helped = farmhand(command, "--help")
    assert helped.returncode == 0 and "examples:\n  farmhand " in helped.stdout


def test_submit_wait_draws_a_bar_on_a_terminal(master: MasterProcess, worker: Program) -> None:
    controller, terminal = pty.openpty()
    try:
        waiting = subprocess.Popen(
            [sys.executable, "-m", "farmhand.cli", "--master", master.address, "submit", "bar",
             "--frames", "1-2", "--wait", "--", sys.executable, "-c", "print('{frame}')"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=terminal, text=True,
        )  # fmt: skip
        os.close(terminal)
        seen = b""
        deadline = time.monotonic() + 60
        while waiting.poll() is None or select.select([controller], [], [], 0)[0]:
            if time.monotonic() > deadline:
                break
            if select.select([controller], [], [], 0.2)[0]:
                try:
                    seen += os.read(controller, 4096)
                except OSError:
                    break
        out, _ = waiting.communicate(timeout=30)
    finally:
        os.close(controller)
    assert waiting.returncode == 0
    assert out.splitlines()[-1].endswith("completed: 2/2 done")
    assert b"\r\x1b[K" in seen and b"[####################] 100.0%" in seen


def test_bash_completes_commands_and_their_flags() -> None:
    script = farmhand("completion").stdout
    probe = (
        script
        + 'COMP_WORDS=(farmhand wa); COMP_CWORD=1; _farmhand; echo "${COMPREPLY[@]}"\n'
        + 'COMP_WORDS=(farmhand submit x --aft); COMP_CWORD=3; _farmhand; echo "${COMPREPLY[@]}"\n'
    )
    ran = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, timeout=30)
    assert ran.stdout.splitlines() == ["watch", "--after"], ran.stderr


def test_bad_usage_with_json_is_a_json_error_on_stdout() -> None:
    bad = farmhand("--json", "job", "seven")
    assert bad.returncode == 2 and bad.stderr == ""
    error = json.loads(bad.stdout)["error"]
    assert error["data"]["reason"] == "usage" and "seven" in error["message"]
    unknown = farmhand("jobs", "--json", "--frob")
    assert unknown.returncode == 2 and "--frob" in json.loads(unknown.stdout)["error"]["message"]
    scheme = farmhand("--json", "--master", "http://farm:6000", "jobs")
    assert scheme.returncode == 2 and "scheme" in json.loads(scheme.stdout)["error"]["message"]


def test_log_prints_all_of_a_log_longer_than_one_read(
    master: MasterProcess, worker: Program
) -> None:
    script = "for n in range(20000): print('line %05d ' % n + 'x' * 20)"
    job_id = farmhand("submit", "long", "--wait", "--", sys.executable, "-c", script, master=master)
    assert job_id.returncode == 0, job_id.stderr
    with RpcClient(master.port) as rpc:
        task_id = rpc.call("tasks.list", job_id=int(job_id.stdout.split()[0]))["tasks"][0]["id"]
    text = farmhand("log", str(task_id), master=master).stdout  # ~600 KB, the master reads 64 KiB
    lines = [line for line in text.splitlines() if line.startswith("line ")]
    assert len(lines) == 20000 and lines[-1].startswith("line 19999 ")
    followed = farmhand("log", str(task_id), "-f", master=master).stdout
    assert followed == text


def test_watch_redraws_the_screen_on_a_terminal(master: MasterProcess) -> None:
    farmhand("submit", "drawn", "--tags", "nowhere", "--", "true", master=master)
    controller, terminal = pty.openpty()
    try:
        watching = subprocess.Popen(
            [sys.executable, "-m", "farmhand.cli", "--master", master.address,
             "watch", "--count", "2"],
            cwd=ROOT, stdout=terminal, stderr=subprocess.PIPE,
        )  # fmt: skip
        os.close(terminal)
        seen = b""
        while True:
            ready = select.select([controller], [], [], 30)[0]
            try:
                chunk = os.read(controller, 4096) if ready else b""
            except OSError:  # the terminal's other side closed: watch has ended
                chunk = b""
            if not chunk:
                break
            seen += chunk
        assert watching.wait(30) == 0
    finally:
        os.close(controller)
    assert seen.count(b"\x1b[H\x1b[2J") == 2 and b"drawn" in seen
