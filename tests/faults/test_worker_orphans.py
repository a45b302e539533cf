"""A task never outlives its worker (issue 10 finding 1): kill -9 of the worker, of the worker and
its task guard together, and of the guard alone, with real processes: the real `worker.py`
against a fake master, running a task whose child and grandchild share its process group.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from farmhand.worker.taskgroups import read_journal
from tests.fakemaster import FakeMaster
from tests.support import Program, wait_for

pytestmark = pytest.mark.timeout(60)

PY = sys.executable
# The task: a child that starts a grandchild in the same process group, prints both pids, waits.
FAMILY = [
    PY,
    "-c",
    textwrap.dedent(
        """
        import os, subprocess, time
        grandchild = subprocess.Popen(["sleep", "1000"])
        print(os.getpid(), grandchild.pid, flush=True)
        time.sleep(1000)
        """
    ),
]
GONE_WITHIN_S = 3.0


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture
def master() -> Iterator[FakeMaster]:
    server = FakeMaster()
    yield server
    server.close()


@pytest.fixture
def start_worker(tmp_path: Path, master: FakeMaster) -> Iterator[Callable[[], Program]]:
    workers: list[Program] = []

    def start() -> Program:
        hellos = len(master.messages("hello"))
        worker = Program(
            "worker.py",
            *f"--master 127.0.0.1:{master.port} --name w1 --work-dir {tmp_path / 'work'}".split(),
            *["--slots", "2", "--kill-grace-s", "0.5", "--log-level", "debug"],
            log_path=tmp_path / "worker.log",
        )
        workers.append(worker)
        master.wait_hello(hellos + 1)
        return worker

    yield start
    for worker in workers:
        worker.stop()
    print((tmp_path / "worker.log").read_text())
    # Whatever a failed test left running must not outlive it.
    for pid in STARTED:
        with contextlib.suppress(psutil.Error):
            psutil.Process(pid).kill()
    STARTED.clear()


STARTED: list[int] = []


def start_family(master: FakeMaster, attempt: str) -> list[int]:
    """Run FAMILY as `attempt`; the pids of the child and the grandchild, both running."""
    assert "result" in master.run(attempt, FAMILY)
    line = wait_for(lambda: master.output(attempt).strip(), what="the task's pids")
    pids = [int(word) for word in line.split()]
    STARTED.extend(pids)
    assert all(alive(pid) for pid in pids)
    assert os.getpgid(pids[1]) == pids[0]  # the grandchild is in the task's group
    return pids


def guards_of(worker: Program) -> list[psutil.Process]:
    found = []
    for child in psutil.Process(worker.proc.pid).children():
        with contextlib.suppress(psutil.Error):
            if any(part.endswith("taskguard.py") for part in child.cmdline()):
                found.append(child)
    return found


def guard_of(worker: Program) -> psutil.Process:
    guards = guards_of(worker)
    assert len(guards) == 1, guards
    return guards[0]


def test_kill_9_of_the_worker_kills_its_tasks_and_their_children(
    master: FakeMaster, start_worker: Callable[[], Program]
) -> None:
    worker = start_worker()
    pids = start_family(master, "a1") + start_family(master, "a2")
    worker.proc.send_signal(signal.SIGKILL)
    worker.proc.wait(10)
    wait_for(lambda: not any(alive(pid) for pid in pids), GONE_WITHIN_S, what="the orphans to die")


def test_a_restarted_worker_kills_what_its_killed_worker_and_guard_left(
    master: FakeMaster, start_worker: Callable[[], Program], tmp_path: Path
) -> None:
    worker = start_worker()
    pids = start_family(master, "b1")
    guard = guard_of(worker)
    guard.send_signal(signal.SIGKILL)  # first, so it cannot act on the worker's death
    worker.proc.send_signal(signal.SIGKILL)
    worker.proc.wait(10)
    guard.wait(10)
    assert all(alive(pid) for pid in pids)  # nobody was left to stop them
    assert [r.pgid for r in read_journal(tmp_path / "work" / ".farmhand-w1.tasks")] == [pids[0]]
    start_worker()
    wait_for(
        lambda: not any(alive(pid) for pid in pids), GONE_WITHIN_S, what="the leftovers to die"
    )
    log = (tmp_path / "worker.log").read_text()
    assert "lists 1 task group(s) of a previous worker" in log
    assert f"killed the process group(s) {pids[0]}" in log


def test_a_recycled_pid_in_the_state_file_is_not_killed(
    master: FakeMaster, start_worker: Callable[[], Program], tmp_path: Path
) -> None:
    # An unrelated process that holds the recorded group id, but started at another time.
    bystander = subprocess.Popen(["sleep", "1000"], start_new_session=True)
    try:
        (tmp_path / "work").mkdir()
        journal = tmp_path / "work" / ".farmhand-w1.tasks"
        journal.write_text(f"+ {bystander.pid} 12345 9.1.x\n")
        start_worker()
        assert read_journal(journal) == []  # rewritten before the worker said hello
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


def test_a_killed_guard_is_replaced_and_still_protects_the_tasks(
    master: FakeMaster, start_worker: Callable[[], Program]
) -> None:
    worker = start_worker()
    pids = start_family(master, "c1")
    first = guard_of(worker)
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    wait_for(
        lambda: [guard.pid for guard in guards_of(worker)] not in ([], [first.pid]),
        what="a new guard",
    )
    assert all(alive(pid) for pid in pids)  # replacing the guard kills nothing
    worker.proc.send_signal(signal.SIGKILL)
    worker.proc.wait(10)
    wait_for(lambda: not any(alive(pid) for pid in pids), GONE_WITHIN_S, what="the orphans to die")


def test_a_clean_stop_leaves_no_guard_and_no_state(
    master: FakeMaster, start_worker: Callable[[], Program], tmp_path: Path
) -> None:
    worker = start_worker()
    assert "result" in master.run("d1", ["true"])
    master.wait_finished("d1")
    state = tmp_path / "work" / ".farmhand-w1.tasks"
    assert read_journal(state) == []  # the finished task's group is forgotten
    assert state.read_text().startswith("+ ")  # it was there while the task ran
    guard = guard_of(worker)
    assert worker.stop() == 0
    guard.wait(10)
    assert not state.exists()


def test_two_workers_of_one_name_cannot_share_a_work_dir(
    master: FakeMaster, start_worker: Callable[[], Program], tmp_path: Path
) -> None:
    start_worker()
    second = subprocess.run(
        [
            PY,
            "worker.py",
            *f"--master 127.0.0.1:{master.port} --name w1".split(),
            "--work-dir",
            str(tmp_path / "work"),
        ],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert second.returncode == 2
    assert "give each worker its own --name or --work-dir" in second.stderr
