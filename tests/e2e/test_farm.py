"""The job farm end to end: a real master, real `worker.py` processes and real child programs.

Nothing is faked: tasks are Python one-liners or small scripts written to the test's folder,
run by workers exactly as an operator's commands would be. Tasks that must be observed mid-run
are *gated*: they leave a marker file and wait for a `go` file the test creates. Every wait
polls (`wait_for`); the only timed observations are "nothing happens for a while" checks.
The master runs with a short heartbeat (0.5 s) so lost workers are noticed quickly.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.support import (
    ConsoleClient,
    MasterProcess,
    Program,
    RpcClient,
    agent,
    wait_for,
)

pytestmark = pytest.mark.timeout(45)

HEARTBEAT_S = "0.5"
SUCCESS_FOOTER = re.compile(r"^--- farmhand: attempt (\S+) ended: exit code 0 after ", re.M)
ATTEMPT_HEADER = re.compile(r"^--- farmhand: attempt (\S+) on (\S+) at ", re.M)

# Prints one line per frame of its chunk: argv `{start} {end}`.
FRAMES_PROGRAM = (
    "import sys; [print('frame', f) for f in range(int(sys.argv[1]), int(sys.argv[2]) + 1)]"
)

# A gated task: `gated.py DIR NAME`. Appends its pid to DIR/pids, marks DIR/started-NAME-PID,
# prints "started NAME PID", waits for DIR/go-NAME or DIR/go-all, prints "done NAME PID".
GATED_PROGRAM = """\
import os, sys, time
folder, name = sys.argv[1], sys.argv[2]
pid = os.getpid()
with open(os.path.join(folder, "pids"), "a") as f:
    f.write(f"{pid}\\n")
open(os.path.join(folder, f"started-{name}-{pid}"), "w").close()
print("started", name, pid, flush=True)
while not any(os.path.exists(os.path.join(folder, g)) for g in (f"go-{name}", "go-all")):
    time.sleep(0.02)
print("done", name, pid, flush=True)
"""

# A task that outlives any timeout and leaves a grandchild: both pids go to DIR/pids.
SLEEPER_PROGRAM = """\
import os, subprocess, sys, time
folder = sys.argv[1]
child = subprocess.Popen(["sleep", "30"])
with open(os.path.join(folder, "pids"), "a") as f:
    f.write(f"{os.getpid()}\\n{child.pid}\\n")
with open(os.path.join(folder, "grandchildren"), "a") as f:
    f.write(f"{child.pid}\\n")
print("sleeping; grandchild", child.pid, flush=True)
time.sleep(30)
"""


# -- helpers ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pid_alive(pid: int) -> bool:
    """True while the process exists and is not a zombie (an orphan may wait to be reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    state = stat.rsplit(")", 1)[1].split()[0]
    return state not in ("Z", "X")


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class Farm:
    """One master and its workers for a test; everything is stopped at the end."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.data_dir = tmp_path / "var"
        self.files = tmp_path / "files"
        self.files.mkdir()
        self.master: MasterProcess | None = None
        self.workers: dict[str, Program] = {}
        self._rpc: RpcClient | None = None
        self._master_starts = 0

    # programs
    def start_master(self, *args: str) -> MasterProcess:
        self._master_starts += 1
        self.master = MasterProcess(
            self.data_dir,
            "--heartbeat-s",
            HEARTBEAT_S,
            *args,
            log_path=self.tmp_path / f"master-{self._master_starts}.log",
        )
        self._rpc = None
        return self.master

    @property
    def port(self) -> int:
        assert self.master is not None
        return self.master.port

    def start_worker(self, name: str, *args: str, slots: int = 1) -> Program:
        worker = Program(
            "worker.py",
            "--master",
            f"127.0.0.1:{self.port}",
            "--name",
            name,
            "--slots",
            str(slots),
            "--work-dir",
            str(self.tmp_path / f"work-{name}"),
            "--kill-grace-s",
            "2",
            "--log-level",
            "debug",
            *args,
            log_path=self.tmp_path / f"worker-{name}.log",
        )
        self.workers[name] = worker
        return worker

    def start_workers(self, *names: str, slots: int = 1) -> None:
        for name in names:
            self.start_worker(name, slots=slots)
        self.wait_online(*names)

    def wait_online(self, *names: str, timeout: float = 15.0) -> None:
        def all_online() -> bool:
            rows = self.rpc.call("clients.list", select="all")["clients"]
            online = {row["name"] for row in rows if row["online"]}
            return set(names) <= online

        wait_for(all_online, timeout=timeout, what=f"workers {names} online")

    def stop(self) -> None:
        if self._rpc is not None:
            self._rpc.close()
            self._rpc = None
        for worker in self.workers.values():
            worker.kill()
        if self.master is not None:
            self.master.kill()
        # Task processes orphaned by a killed worker (own session) must not outlive the test.
        for pid in self.recorded_pids():
            if pid_alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    def stop_master(self) -> None:
        """A clean stop (SIGTERM): the journal is flushed, the DB can be read."""
        if self._rpc is not None:
            self._rpc.close()
            self._rpc = None
        assert self.master is not None
        assert self.master.stop() == 0, self.master.log()

    def kill_master(self) -> None:
        if self._rpc is not None:
            self._rpc.close()
            self._rpc = None
        assert self.master is not None
        self.master.kill()

    # the API
    @property
    def rpc(self) -> RpcClient:
        if self._rpc is None:
            self._rpc = RpcClient(self.port)
        return self._rpc

    def submit(self, name: str, argv: list[str], **params: Any) -> int:
        result = self.rpc.call("jobs.submit", name=name, argv=argv, **params)
        return int(result["job_id"])

    def job(self, job_id: int) -> dict[str, Any]:
        return self.rpc.call("jobs.get", job_id=job_id)

    def tasks(self, job_id: int) -> list[dict[str, Any]]:
        return self.rpc.call("tasks.list", job_id=job_id)["tasks"]

    def wait_job(self, job_id: int, status: str, timeout: float = 15.0) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            view = self.job(job_id)
            if view["status"] == status:
                return view
            return None

        try:
            return wait_for(reached, timeout=timeout, interval=0.05, what=f"job {status}")
        except AssertionError:
            raise AssertionError(
                f"job {job_id} is not {status}: {self.job(job_id)}\n{self.tasks(job_id)}"
            ) from None

    def wait_task(
        self, job_id: int, predicate: Callable[[dict[str, Any]], bool], timeout: float = 15.0
    ) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            return next((task for task in self.tasks(job_id) if predicate(task)), None)

        return wait_for(found, timeout=timeout, interval=0.05, what="a task state")

    def log(self, task_id: int) -> str:
        text, offset = "", 0
        while True:
            chunk = self.rpc.call("tasks.log", task_id=task_id, offset=offset)
            text += chunk["text"]
            if chunk["next_offset"] == offset or chunk["next_offset"] >= chunk["size"]:
                return text
            offset = chunk["next_offset"]

    # child programs and their files
    def program(self, name: str, source: str) -> str:
        path = self.files.parent / name
        path.write_text(source)
        return str(path)

    def gated_argv(self, name: str) -> list[str]:
        program = self.program("gated.py", GATED_PROGRAM)
        return [sys.executable, program, str(self.files), name]

    def started(self, name: str) -> list[int]:
        """Pids of the gated tasks called `name` that have started."""
        return [int(p.name.rsplit("-", 1)[1]) for p in self.files.glob(f"started-{name}-*")]

    def go(self, name: str) -> None:
        (self.files / f"go-{name}").touch()

    def recorded_pids(self) -> list[int]:
        path = self.files / "pids"
        if not path.exists():
            return []
        return [int(line) for line in path.read_text().split()]

    def db_tasks(self) -> list[dict[str, Any]]:
        """The task rows of the master's SQLite file (WAL: readable while the master runs)."""
        connection = sqlite3.connect(self.data_dir / "farmhand.db")
        connection.row_factory = sqlite3.Row
        try:
            rows = connection.execute("SELECT * FROM task ORDER BY id").fetchall()
            return [dict(row) for row in rows]
        finally:
            connection.close()


@pytest.fixture
def farm(tmp_path: Path) -> Iterator[Farm]:
    farm = Farm(tmp_path)
    farm.start_master()
    try:
        yield farm
    finally:
        farm.stop()


def counts(farm: Farm, job_id: int) -> dict[str, int]:
    return farm.job(job_id)["tasks_by_status"]


def stays(condition: Callable[[], bool], seconds: float, interval: float = 0.05) -> None:
    """Assert that condition() holds at every poll for `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert condition()
        time.sleep(interval)


# -- 1. a frame range over several workers ---------------------------------------------------


def test_a_100_frame_job_runs_on_3_workers_and_every_frame_is_logged_once(farm: Farm) -> None:
    farm.start_workers("w1", "w2", "w3")
    job_id = farm.submit(
        "frames",
        [sys.executable, "-c", FRAMES_PROGRAM, "{start}", "{end}"],
        frames="1-100",
        chunk=10,
    )
    view = farm.wait_job(job_id, "completed", timeout=30)
    assert view["tasks_total"] == 10
    assert view["progress"] == 100.0

    tasks = farm.tasks(job_id)
    assert [task["frames"] for task in tasks] == [f"{s}-{s + 9}" for s in range(1, 101, 10)]
    assert {task["worker"] for task in tasks} == {"w1", "w2", "w3"}
    seen: list[int] = []
    for task in tasks:
        text = farm.log(task["id"])
        frames = [int(n) for n in re.findall(r"^frame (\d+)$", text, re.M)]
        start, end = (int(n) for n in task["frames"].split("-"))
        assert frames == list(range(start, end + 1)), text
        assert len(SUCCESS_FOOTER.findall(text)) == 1, text
        assert len(ATTEMPT_HEADER.findall(text)) == 1, text
        seen += frames
    assert sorted(seen) == list(range(1, 101))

    farm.stop_master()
    rows = farm.db_tasks()
    assert len(rows) == 10
    for row in rows:
        assert row["status"] == "completed", row
        assert row["attempts"] == 0, row
        assert row["dispatches"] == 1, row
        assert row["exit_code"] == 0, row
        assert row["worker"] in ("w1", "w2", "w3"), row


# -- 2. priorities and tags ------------------------------------------------------------------


def test_a_higher_priority_job_runs_first_and_tags_pick_the_worker(farm: Farm) -> None:
    farm.start_workers("plain")
    blocker = farm.submit("blocker", farm.gated_argv("blocker"))
    wait_for(lambda: farm.started("blocker"), what="the blocker running")
    low = farm.submit("low", farm.gated_argv("low"), priority=10)
    high = farm.submit("high", farm.gated_argv("high"), priority=90)
    (farm.files / "go-all").touch()
    for job_id in (blocker, low, high):
        farm.wait_job(job_id, "completed")
    low_task, high_task = farm.tasks(low)[0], farm.tasks(high)[0]
    assert parse_time(high_task["finished"]) <= parse_time(low_task["started"]), (
        high_task,
        low_task,
    )

    # A gpu job waits while only the untagged worker is there, then runs on the gpu worker.
    gpu = farm.submit("gpu", [sys.executable, "-c", "print('on gpu')"], frames="1-4", tags=["gpu"])
    stays(lambda: counts(farm, gpu)["queued"] == 4, 1.0)
    farm.start_worker("gpu1", "--tags", "gpu,cuda")
    view = farm.wait_job(gpu, "completed")
    assert view["tags"] == ["gpu"]
    assert {task["worker"] for task in farm.tasks(gpu)} == {"gpu1"}
    rows = {row["name"]: row for row in farm.rpc.call("clients.list", select="all")["clients"]}
    assert rows["gpu1"]["tags"] == ["gpu", "cuda"]


# -- 3. timeouts -----------------------------------------------------------------------------


def test_a_timeout_kills_the_process_group_and_counts_attempts(farm: Farm) -> None:
    farm.start_workers("w1")
    program = farm.program("sleeper.py", SLEEPER_PROGRAM)
    job_id = farm.submit(
        "sleeper",
        [sys.executable, program, str(farm.files)],
        timeout_s=1,
        max_attempts=2,
        retry_delay_s=0,
    )
    view = farm.wait_job(job_id, "failed", timeout=25)
    assert view["tasks_by_status"]["failed"] == 1
    (task,) = farm.tasks(job_id)
    assert task["status"] == "failed"
    assert task["attempts"] == 2
    assert "timeout" in (task["error"] or ""), task

    grandchildren = [int(p) for p in (farm.files / "grandchildren").read_text().split()]
    assert len(grandchildren) == 2, "one grandchild per attempt"
    wait_for(
        lambda: not any(pid_alive(pid) for pid in farm.recorded_pids()),
        timeout=5,
        what="every process of both attempts gone",
    )
    text = farm.log(task["id"])
    assert len(ATTEMPT_HEADER.findall(text)) == 2, text
    assert len(re.findall(r"ended: .*timeout after 1s", text)) == 2, text
    assert text.count("sleeping; grandchild") == 2, text


# -- 4. a worker killed mid-task -------------------------------------------------------------


def kill_the_worker_mid_task(farm: Farm) -> tuple[int, dict[str, Any], dict[str, Any]]:
    """A one-task job starts on w1 or w2; its worker is killed -9. Returns the job id, the
    task as it was before the kill and the task once it completed on the other worker."""
    farm.start_workers("w1", "w2")
    job_id = farm.submit("survivor", farm.gated_argv("t"))
    wait_for(lambda: farm.started("t"), what="the task running")
    before = farm.wait_task(job_id, lambda task: task["status"] == "running")
    victim = before["worker"]
    farm.workers[victim].kill()
    other = "w2" if victim == "w1" else "w1"
    wait_for(lambda: len(farm.started("t")) == 2, timeout=15, what="the task started again")
    requeued = farm.wait_task(job_id, lambda task: task["status"] == "running")
    assert requeued["worker"] == other
    assert requeued["attempt"] != before["attempt"]
    assert requeued["attempts"] == 0
    farm.go("t")
    farm.wait_job(job_id, "completed")
    (after,) = farm.tasks(job_id)
    return job_id, before, after


def test_a_killed_workers_task_is_requeued_without_counting_an_attempt(farm: Farm) -> None:
    _, before, after = kill_the_worker_mid_task(farm)
    assert after["status"] == "completed"
    assert after["worker"] != before["worker"]
    assert after["attempts"] == 0
    rows = {row["name"]: row for row in farm.rpc.call("clients.list", select="all")["clients"]}
    assert rows[before["worker"]]["online"] is False
    text = farm.log(after["id"])
    assert f"worker {before['worker']} lost" in text, text
    assert SUCCESS_FOOTER.findall(text) == [after["attempt"]], text


# -- 6. a stale attempt's report is refused --------------------------------------------------


def test_a_stale_attempts_finished_report_is_refused_and_changes_nothing(farm: Farm) -> None:
    job_id, before, after = kill_the_worker_mid_task(farm)
    log_before = farm.log(after["id"])
    with agent(farm.port, before["worker"], info={"slots": 1}) as ghost:
        reply = ghost.request("task.finished", attempt=before["attempt"], exit_code=0)
        assert reply["error"]["code"] == -32009, reply
        assert reply["error"]["data"]["reason"] == "stale_attempt", reply
        failing = ghost.request("task.finished", attempt=before["attempt"], exit_code=1)
        assert failing["error"]["data"]["reason"] == "stale_attempt", failing
        # The stale attempt's notifications are dropped too.
        ghost.notify("task.started", attempt=before["attempt"], pid=1)
        ghost.notify("task.output", attempt=before["attempt"], data="stale output\n")
        ghost.notify("task.progress", attempt=before["attempt"], percent=50.0)
        assert ghost.call("ping") == "pong"
    (now,) = farm.tasks(job_id)
    assert now == after
    assert farm.job(job_id)["status"] == "completed"
    assert farm.log(after["id"]) == log_before


# -- 5. the master killed mid-job ------------------------------------------------------------


def ended_on_workers(farm: Farm) -> int:
    """How many attempts the workers saw end (from their logs)."""
    return sum(worker.log().count(": finished: exit code") for worker in farm.workers.values())


def test_a_master_killed_mid_job_recovers_and_every_task_completes_once(tmp_path: Path) -> None:
    farm = Farm(tmp_path)
    port = free_port()
    try:
        farm.start_master("--port", str(port))
        assert farm.port == port
        farm.start_workers("w1", "w2", slots=2)
        job_id = farm.submit(
            "crashy",
            [
                sys.executable,
                "-c",
                "import sys, time; time.sleep(0.3); print('task', sys.argv[1])",
                "{task}",
            ],
            frames="1-20",
        )
        wait_for(
            lambda: counts(farm, job_id)["completed"] >= 4, timeout=15, what="a few tasks done"
        )
        at_kill = counts(farm, job_id)
        ended_before = ended_on_workers(farm)
        farm.kill_master()
        assert at_kill["completed"] < 20, at_kill
        assert at_kill["queued"] > 0, at_kill
        # While the master is away, tasks end on the workers: their results wait there.
        wait_for(
            lambda: ended_on_workers(farm) > ended_before,
            timeout=10,
            what="a task ending while the master is down",
        )
        farm.start_master("--port", str(port))
        assert farm.port == port
        farm.wait_online("w1", "w2", timeout=20)
        farm.wait_job(job_id, "completed", timeout=20)
        tasks = farm.tasks(job_id)
        for task in tasks:
            text = farm.log(task["id"])
            # One successful attempt, the recorded one. (The same attempt's footer may appear
            # twice if the kill fell between taking and committing a result: see
            # test_a_result_resent_after_a_master_crash_ends_the_task_log_once.)
            assert set(SUCCESS_FOOTER.findall(text)) == {task["attempt"]}, text
            assert re.search(rf"^task {task['index']}$", text, re.M), text
        for worker in farm.workers.values():
            assert worker.proc.poll() is None, "the workers kept running"
        held = [
            int(n)
            for worker in farm.workers.values()
            for n in re.findall(r"sender attached: (\d+) attempt", worker.log())
        ]
        assert max(held) > 0, "some results were delivered after the restart"
        farm.stop_master()
        rows = farm.db_tasks()
        assert len(rows) == 20
        assert [row["status"] for row in rows].count("completed") == 20, rows
        for row in rows:
            assert row["attempts"] == 0, row
            assert row["exit_code"] == 0, row
    finally:
        farm.stop()


# -- 7. operator actions on running work -----------------------------------------------------


def test_pause_resume_cancel_and_requeue_act_on_running_work(farm: Farm) -> None:
    farm.start_workers("w1")
    job_id = farm.submit("ops", farm.gated_argv("{task}"), frames="1-4")

    # pause: the running task finishes, nothing new starts while the worker is free
    wait_for(lambda: farm.started("0"), what="task 0 running")
    assert farm.rpc.call("jobs.pause", job_id=job_id)["status"] == "paused"
    farm.go("0")
    wait_for(lambda: counts(farm, job_id)["completed"] == 1, what="task 0 completed")
    stays(
        lambda: counts(farm, job_id)["queued"] == 3 and not farm.started("1"),
        1.0,
    )
    assert farm.job(job_id)["status"] == "paused"
    rows = farm.rpc.call("clients.list", select="w1")["clients"]
    assert rows[0]["status"] == "idle"

    # resume: the next task starts
    assert farm.rpc.call("jobs.resume", job_id=job_id)["status"] == "active"
    (pid,) = wait_for(lambda: farm.started("1"), what="task 1 running")
    assert pid_alive(pid)

    # cancel: the running child is killed on the worker, the job is canceled
    view = farm.rpc.call("jobs.cancel", job_id=job_id)
    assert view["status"] == "canceled"
    wait_for(lambda: not pid_alive(pid), timeout=10, what="the canceled child gone")
    assert counts(farm, job_id) == {
        "queued": 0,
        "dispatched": 0,
        "running": 0,
        "completed": 1,
        "failed": 0,
        "canceled": 3,
    }
    stays(lambda: not farm.started("2") and farm.job(job_id)["status"] == "canceled", 0.5)
    task1 = farm.tasks(job_id)[1]
    assert "canceled" in farm.log(task1["id"])
    wait_for(
        lambda: farm.rpc.call("clients.list", select="w1")["clients"][0]["status"] == "idle",
        what="w1 idle after the cancel",
    )

    # requeue: the canceled tasks run again and the job completes
    (farm.files / "go-all").touch()
    farm.rpc.call("jobs.requeue", job_id=job_id)
    view = farm.wait_job(job_id, "completed")
    assert view["tasks_by_status"]["completed"] == 4
    assert len(farm.started("1")) == 2, "task 1 ran again"
    assert len(farm.started("0")) == 1, "the completed task was not run again"
    assert all(task["attempts"] == 0 for task in farm.tasks(job_id))


# -- 8. dependencies -------------------------------------------------------------------------


def test_a_dependent_job_starts_only_after_its_dependency_completed(farm: Farm) -> None:
    farm.start_workers("w1", "w2")
    first = farm.submit("A", farm.gated_argv("a{task}"), frames="1-2")
    second = farm.submit(
        "B", [sys.executable, "-c", "print('B runs')"], frames="1-2", depends_on=[first]
    )
    wait_for(lambda: farm.started("a0") and farm.started("a1"), what="A running on both")
    farm.go("a0")
    wait_for(lambda: counts(farm, first)["completed"] == 1, what="A half done")
    # One worker is free now, yet B waits for all of A.
    stays(lambda: counts(farm, second)["queued"] == 2, 0.8)
    farm.go("a1")
    farm.wait_job(second, "completed")
    assert farm.job(first)["status"] == "completed"
    a_finished = max(parse_time(task["finished"]) for task in farm.tasks(first))
    b_started = min(parse_time(task["started"]) for task in farm.tasks(second))
    assert a_finished <= b_started


# -- 9. the console drives it ----------------------------------------------------------------


def test_the_console_submits_a_job_and_shows_its_progress_and_log(farm: Farm) -> None:
    farm.start_workers("w1")
    with ConsoleClient(farm.port) as console:
        reply = console.command("submit demo frames=1-4 chunk=2 -- echo {frame}")
        match = re.fullmatch(r"submitted job (\d+) with 2 tasks", reply)
        assert match, reply
        job_id = int(match.group(1))

        def completed_row() -> str | None:
            listing = console.command("jobs")
            row = next(
                (
                    line
                    for line in listing.splitlines()
                    if line.split()[:2] == [str(job_id), "demo"]
                ),
                None,
            )
            return row if row and "completed" in row else None

        row = wait_for(completed_row, timeout=15, interval=0.1, what="the job completed")
        assert "[" + "#" * 20 + "] 100.0%" in row, row
        assert "2/2" in row, row

        tasks = farm.tasks(job_id)
        for task, frame in zip(tasks, ("1", "3"), strict=True):
            text = console.command(f"log {task['id']}")
            lines = text.splitlines()
            assert frame in lines, text
            assert any("ended: exit code 0" in line for line in lines), text


# -- 5b. a result the master took but never committed ----------------------------------------


def result_taken_but_not_committed(tmp_path: Path) -> tuple[Farm, int, dict[str, Any]]:
    """The master is killed between taking a task's result and committing it (the test holds
    the database locked, so the commit waits), then started again on the same port and data
    dir. Returns the farm (its new master running), the job id and the task before the kill.
    The worker kept the unacknowledged result and sends it again to the new master."""
    farm = Farm(tmp_path)
    try:
        return _result_taken_but_not_committed(farm)
    except BaseException:
        farm.stop()
        raise


def _result_taken_but_not_committed(farm: Farm) -> tuple[Farm, int, dict[str, Any]]:
    port = free_port()
    farm.start_master("--port", str(port))
    farm.start_workers("w1")
    job_id = farm.submit("once", farm.gated_argv("t"))
    wait_for(lambda: farm.started("t"), what="the task running")
    (task,) = farm.tasks(job_id)

    def stored_running() -> bool:
        row = farm.db_tasks()[0]
        return row["status"] == "running" and row["attempt"] == task["attempt"]

    wait_for(stored_running, what="the running task stored")
    lock = sqlite3.connect(farm.data_dir / "farmhand.db", isolation_level=None, timeout=10)
    try:
        lock.execute("BEGIN EXCLUSIVE")
        farm.go("t")
        log_path = farm.data_dir / "logs" / f"job-{job_id}" / f"task-{task['id']}.log"
        wait_for(  # the task's file exists once its first output arrived
            lambda: log_path.exists() and "ended: exit code 0" in log_path.read_text(),
            what="the master taking the result",
        )
        farm.kill_master()
    finally:
        lock.close()
    assert farm.db_tasks()[0]["status"] == "running", "the result was never committed"
    farm.start_master("--port", str(port))
    farm.wait_job(job_id, "completed", timeout=20)
    return farm, job_id, task


def test_a_result_the_master_did_not_commit_before_dying_is_recorded_once(
    tmp_path: Path,
) -> None:
    farm, job_id, task = result_taken_but_not_committed(tmp_path)
    try:
        (done,) = farm.tasks(job_id)
        assert done["status"] == "completed"
        assert done["attempt"] == task["attempt"]
        assert done["attempts"] == 0
        assert len(farm.started("t")) == 1, "the task ran once"
        text = farm.log(done["id"])
        assert text.count("done t") == 1, text
        assert set(SUCCESS_FOOTER.findall(text)) == {task["attempt"]}, text
        farm.stop_master()
        (row,) = farm.db_tasks()
        assert (row["status"], row["attempt"], row["dispatches"]) == (
            "completed",
            task["attempt"],
            1,
        )
    finally:
        farm.stop()


def test_a_result_resent_after_a_master_crash_ends_the_task_log_once(tmp_path: Path) -> None:
    farm, job_id, task = result_taken_but_not_committed(tmp_path)
    try:
        text = farm.log(farm.tasks(job_id)[0]["id"])
        assert SUCCESS_FOOTER.findall(text) == [task["attempt"]], text
    finally:
        farm.stop()


# -- 5c. a dispatch the master could not store -----------------------------------------------


def test_a_dispatch_the_master_could_not_store_never_leaves_and_runs_once(
    tmp_path: Path,
) -> None:
    """The master dispatches a task but cannot store that (the test holds the database
    locked): the order waits for its commit (durable dispatch, issue 10.6), so nothing runs.
    The master dies; the next one finds the task queued and runs it, once."""
    farm = Farm(tmp_path)
    port = free_port()
    try:
        farm.start_master("--port", str(port))
        job_id = farm.submit("lost", farm.gated_argv("t"))
        assert farm.db_tasks()[0]["status"] == "queued"
        lock = sqlite3.connect(farm.data_dir / "farmhand.db", isolation_level=None, timeout=10)
        try:
            lock.execute("BEGIN EXCLUSIVE")
            farm.start_workers("w1")
            lost = farm.wait_task(job_id, lambda task: task["status"] == "dispatched")
            # Held back while the dispatch is not stored: no process starts meanwhile.
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline:
                assert farm.started("t") == [], "an order left before its dispatch was stored"
                time.sleep(0.05)
            farm.kill_master()
        finally:
            lock.close()
        assert farm.db_tasks()[0]["status"] == "queued", "the dispatch was never stored"
        assert farm.started("t") == []

        farm.start_master("--port", str(port))
        (pid,) = wait_for(lambda: farm.started("t"), timeout=15, what="the task run")
        farm.go("t")
        farm.wait_job(job_id, "completed", timeout=15)
        (done,) = farm.tasks(job_id)
        assert done["attempt"] != lost["attempt"]
        assert done["attempts"] == 0
        assert farm.started("t") == [pid], "the task ran once"
        text = farm.log(done["id"])
        assert SUCCESS_FOOTER.findall(text) == [done["attempt"]], text
        assert text.count("done t") == 1, text
        assert f"done t {pid}" in text, text
        farm.stop_master()
        (row,) = farm.db_tasks()
        assert (row["status"], row["attempt"], row["attempts"]) == (
            "completed",
            done["attempt"],
            0,
        )
    finally:
        farm.stop()
