"""The job policy on the worker (issue 9 findings 7 and 8): what a task inherits (the worker's
environment without farmhand's secrets, plus its own FARMHAND_* variables), where it may run
(inside the work dir after resolving symlinks, or under an --allow-cwd root) and which env names
a job may set (a deny list, with --allow-env). The real `worker.py` against a fake master that
sends orders the real master would refuse, since the worker must hold on its own.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakemaster import FakeMaster
from tests.support import Program

pytestmark = pytest.mark.timeout(60)

PY = sys.executable
PRINT_ENV = [PY, "-c", "import json, os; print(json.dumps(dict(os.environ)))"]
PRINT_CWD = [PY, "-c", "import os; print(os.getcwd())"]
SECRETS = {
    "FARMHAND_KEY": "fhk_sekrit_worker_key",
    "FARMHAND_DB": "postgresql://farm:dbpassword@db/farm",
    "FARMHAND_MQTT_PASSWORD": "mqttpassword",
    "NOTIFY_SOCKET": "/run/systemd/notify",
}


@pytest.fixture
def master() -> Iterator[FakeMaster]:
    server = FakeMaster()
    yield server
    server.close()


@pytest.fixture
def start_worker(tmp_path: Path, master: FakeMaster) -> Iterator[Callable[..., Program]]:
    workers: list[Program] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Program:
        worker = Program(
            "worker.py",
            *f"--master 127.0.0.1:{master.port} --name w1 --work-dir {tmp_path / 'work'}".split(),
            "--log-level",
            "debug",
            *args,
            log_path=tmp_path / "worker.log",
            env=env,
        )
        workers.append(worker)
        master.wait_hello()
        return worker

    yield start
    for worker in workers:
        worker.stop()
        print(worker.log())


def run(master: FakeMaster, attempt: str, argv: list[str], **params: Any) -> dict[str, Any]:
    assert "result" in master.run(attempt, argv, **params)
    return master.wait_finished(attempt)


def test_a_task_inherits_no_farmhand_secret_and_gets_its_own_variables(
    master: FakeMaster, start_worker: Callable[..., Program]
) -> None:
    start_worker(env={**SECRETS, "RENDER_THREADS": "8"})
    result = run(
        master,
        "7.1.abc",
        PRINT_ENV,
        task_id=70,
        job_id=7,
        frame_start=10,
        frame_end=19,
        env={"FARMHAND_JOB_ID": "999", "FARMHAND_SHOT": "sh010", "SCENE": "a.blend"},
    )
    assert result["exit_code"] == 0, result
    text = master.output("7.1.abc")
    env = json.loads(text)
    for name, value in SECRETS.items():
        assert name not in env and value not in text
    assert env["RENDER_THREADS"] == "8" and "HOME" in env  # the rest of the worker's env
    assert env["SCENE"] == "a.blend" and env["FARMHAND_SHOT"] == "sh010"  # the job's env
    assert {k: v for k, v in env.items() if k.startswith("FARMHAND_")} == {
        "FARMHAND_JOB_ID": "7",  # the worker's values win over the job's
        "FARMHAND_TASK_ID": "70",
        "FARMHAND_ATTEMPT": "7.1.abc",
        "FARMHAND_WORKER": "w1",
        "FARMHAND_FRAME_START": "10",
        "FARMHAND_FRAME_END": "19",
        "FARMHAND_SHOT": "sh010",
    }
    assert run(master, "x", PRINT_ENV)["exit_code"] == 0
    no_frames = json.loads(master.output("x"))
    assert "FARMHAND_FRAME_START" not in no_frames


def test_a_cwd_outside_the_work_dir_cannot_start(
    master: FakeMaster, start_worker: Callable[..., Program], tmp_path: Path
) -> None:
    start_worker()
    work = tmp_path / "work"
    (work / "shots").mkdir(parents=True)
    (work / "out").symlink_to("/")
    cases = {
        "root": ("/", "outside the folders this worker allows (--allow-cwd: none)"),
        "climb": ("../../..", "leaves the work dir"),
        "link": ("out", "leaves the work dir"),
        "link-below": ("out/etc", "leaves the work dir"),
    }
    for attempt, (cwd, words) in cases.items():
        result = run(master, attempt, PRINT_CWD, cwd=cwd)
        assert result["exit_code"] is None, (cwd, result)
        assert result["error"].startswith("cannot start: ") and words in result["error"], result
        assert master.messages("task.started", attempt) == []
    inside = run(master, "inside", PRINT_CWD, cwd="shots/../shots")
    assert inside["exit_code"] == 0 and master.output("inside") == f"{work / 'shots'}\n"


def test_absolute_cwds_only_under_the_allowed_roots(
    master: FakeMaster, start_worker: Callable[..., Program], tmp_path: Path
) -> None:
    mount = tmp_path / "mnt" / "render"
    (mount / "shot1").mkdir(parents=True)
    (mount / "escape").symlink_to(tmp_path)
    (tmp_path / "elsewhere").mkdir()
    start_worker("--allow-cwd", f"{mount},/no/such/root")  # as agents.toml writes a list
    ok = run(master, "ok", PRINT_CWD, cwd=str(mount / "shot1"))
    assert ok["exit_code"] == 0 and master.output("ok") == f"{mount / 'shot1'}\n"
    for attempt, cwd in [("out", tmp_path / "elsewhere"), ("link", mount / "escape")]:
        result = run(master, attempt, PRINT_CWD, cwd=str(cwd))
        assert result["error"].startswith("cannot start: cwd "), result
        assert f"--allow-cwd: {mount}, /no/such/root" in result["error"]


def test_denied_env_names_cannot_start_unless_the_worker_allows_them(
    master: FakeMaster, start_worker: Callable[..., Program]
) -> None:
    start_worker()
    for attempt, env in [("preload", {"LD_PRELOAD": "/tmp/x.so"}), ("path", {"PATH": "/tmp"})]:
        result = run(master, attempt, PRINT_ENV, env=env)
        assert result["exit_code"] is None and result["error"].startswith("cannot start: env ")
        assert next(iter(env)) in result["error"] and "--allow-env" in result["error"]
        assert master.messages("task.started", attempt) == []


def test_allow_env_lets_a_job_set_a_denied_name(
    master: FakeMaster, start_worker: Callable[..., Program]
) -> None:
    start_worker("--allow-env", "LD_LIBRARY_PATH", "--allow-env", "PATH")
    result = run(
        master, "ok", PRINT_ENV, env={"LD_LIBRARY_PATH": "/opt/lib", "PATH": "/usr/bin:/bin"}
    )
    assert result["exit_code"] == 0, result
    env = json.loads(master.output("ok"))
    assert env["LD_LIBRARY_PATH"] == "/opt/lib" and env["PATH"] == "/usr/bin:/bin"
    refused = run(master, "no", PRINT_ENV, env={"LD_PRELOAD": "/tmp/x.so"})
    assert "LD_PRELOAD" in refused["error"]
