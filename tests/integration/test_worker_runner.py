"""The worker's task runner end to end: the real `worker.py` as a subprocess against a fake master,
running real programs. Covers the `task.*` wire contract: output, exit codes, env/cwd, no shell,
timeouts and cancels (whole process group), slots, stale results, reconnects, progress.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from tests.fakemaster import FakeMaster
from tests.support import Program, wait_for

PY = sys.executable
StartWorker = Callable[..., Program]


def py(code: str) -> list[str]:
    """argv that runs a Python snippet."""
    return [PY, "-c", textwrap.dedent(code)]


@pytest.fixture
def master() -> Iterator[FakeMaster]:
    server = FakeMaster()
    yield server
    server.close()


@pytest.fixture
def start_worker(tmp_path: Path, master: FakeMaster) -> Iterator[StartWorker]:
    workers: list[Program] = []

    def start(*args: str) -> Program:
        worker = Program(
            "worker.py",
            "--master",
            f"127.0.0.1:{master.port}",
            "--name",
            "w1",
            "--work-dir",
            str(tmp_path / "work"),
            "--kill-grace-s",
            "0.5",
            "--log-level",
            "debug",
            *args,
            log_path=tmp_path / "worker.log",
        )
        workers.append(worker)
        master.wait_hello()
        return worker

    yield start
    for worker in workers:
        worker.stop()
        print(worker.log())  # shown by pytest when the test failed


def gone(pid: int) -> bool:
    """The process no longer exists (a zombie nobody reaped counts as gone)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_output_is_streamed_in_order_and_complete(master: FakeMaster, start_worker) -> None:
    start_worker()
    code = """
        import time
        for i in range(500):
            print(f"line {i}", flush=True)
            if i % 100 == 0:
                time.sleep(0.05)
    """
    assert master.run("a1", py(code)) == {"jsonrpc": "2.0", "id": 1, "result": {}}
    result = master.wait_finished("a1")
    assert result["exit_code"] == 0
    assert result["error"] is None
    assert result["duration_s"] >= 0
    assert master.output("a1") == "".join(f"line {i}\n" for i in range(500))
    order = master.order_of("a1")
    assert order[0] == "task.started"
    assert order[-1] == "task.finished"
    assert set(order[1:-1]) == {"task.output"}
    assert master.messages("task.started", "a1")[0]["pid"] > 0


@pytest.mark.parametrize(
    ("argv", "exit_code"),
    [
        (["true"], 0),
        (["false"], 1),
        (py("import sys; sys.exit(3)"), 3),
        (py("import os, signal; os.kill(os.getpid(), signal.SIGKILL)"), -9),
    ],
)
def test_exit_codes(master: FakeMaster, start_worker, argv: list[str], exit_code: int) -> None:
    start_worker()
    master.run("a1", argv)
    result = master.wait_finished("a1")
    assert result["exit_code"] == exit_code
    assert result["error"] is None


def test_ten_megabytes_fast_with_bounded_memory(master: FakeMaster, start_worker) -> None:
    worker = start_worker()
    master.read_delay_s = 0.02  # a slow master: the worker must hold back, not buffer or drop
    rss = psutil.Process(worker.proc.pid)
    baseline = rss.memory_info().rss
    code = """
        import sys
        out = sys.stdout.buffer
        for i in range(100_000):
            out.write(b"%08d " % i + b"x" * 90 + b"\\n")
    """
    master.run("big", py(code))
    peak = [baseline]

    def done() -> object:
        peak[0] = max(peak[0], rss.memory_info().rss)
        return master.finished("big")

    result = wait_for(done, timeout=50, what="the 10 MB task to finish")
    assert result["exit_code"] == 0
    text = master.output("big")
    assert len(text) == 100_000 * 100
    assert text == "".join(f"{i:08d} " + "x" * 90 + "\n" for i in range(100_000))
    assert max(len(p["data"].encode()) for p in master.messages("task.output", "big")) <= 65536
    assert peak[0] - baseline < 8 * 1024 * 1024, f"worker grew by {peak[0] - baseline} bytes"


def test_multibyte_characters_are_never_split(master: FakeMaster, start_worker) -> None:
    start_worker()
    code = """
        import sys, time
        out = sys.stdout.buffer
        for _ in range(3):
            out.write("é€".encode()[:3]); out.flush(); time.sleep(0.15)
            out.write("é€".encode()[3:] + b"\\n"); out.flush()
        out.write(b"bad \\xff byte\\n")
    """
    master.run("utf", py(code))
    master.wait_finished("utf")
    chunks = [p["data"] for p in master.messages("task.output", "utf")]
    assert len(chunks) > 1
    assert "".join(chunks) == "é€\n" * 3 + "bad \ufffd byte\n"


def test_no_shell_is_involved(master: FakeMaster, start_worker) -> None:
    start_worker()
    master.run("a1", ["echo", "$HOME", "|", "`id`"])
    master.wait_finished("a1")
    assert master.output("a1") == "$HOME | `id`\n"


def test_env_and_cwd_are_applied(master: FakeMaster, start_worker, tmp_path: Path) -> None:
    start_worker("--allow-cwd", str(tmp_path))  # an absolute cwd must be under an allowed root
    there = tmp_path / "there"
    there.mkdir()
    code = "import os; print(os.environ['FARMHAND_TEST'], os.getcwd(), 'PATH' in os.environ)"
    master.run("a1", py(code), env={"FARMHAND_TEST": "hello world"}, cwd=str(there))
    master.wait_finished("a1")
    assert master.output("a1") == f"hello world {there} True\n"

    master.run("a2", py("import os; print(os.getcwd())"))
    master.wait_finished("a2")
    assert master.output("a2") == f"{tmp_path / 'work'}\n"  # the work dir, created on demand


@pytest.mark.parametrize(
    ("argv", "cwd", "reason"),
    [
        (["/no/such/program"], None, "No such file or directory"),
        (["/etc/passwd"], None, "Permission denied"),
        (["true"], "no/such/dir", "no such directory"),
        (["true"], "/no/such/dir", "outside the folders this worker allows"),
    ],
)
def test_cannot_start(
    master: FakeMaster, start_worker, argv: list[str], cwd: str | None, reason: str
) -> None:
    start_worker()
    assert "result" in master.run("a1", argv, cwd=cwd)
    result = master.wait_finished("a1")
    assert result["exit_code"] is None
    assert result["error"].startswith("cannot start: ")
    assert reason in result["error"]
    assert master.messages("task.started", "a1") == []


def test_timeout_kills_the_whole_process_group(master: FakeMaster, start_worker) -> None:
    start_worker()
    code = """
        import subprocess, time
        grandchild = subprocess.Popen(["sleep", "1000"])
        print(grandchild.pid, flush=True)
        time.sleep(1000)
    """
    master.run("slow", py(code), timeout_s=1)
    grandchild = int(wait_for(lambda: master.output("slow").strip(), what="grandchild pid"))
    child = master.messages("task.started", "slow")[0]["pid"]
    result = master.wait_finished("slow")
    assert result["error"] == "timeout after 1s"
    assert result["exit_code"] == -signal.SIGTERM
    assert result["duration_s"] >= 1.0
    wait_for(lambda: gone(child) and gone(grandchild), what="the task's processes to die")


def test_sigkill_after_the_grace_period(master: FakeMaster, start_worker) -> None:
    start_worker()
    code = """
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("ready", flush=True)
        time.sleep(1000)
    """
    master.run("stubborn", py(code), timeout_s=0.5)
    result = master.wait_finished("stubborn")
    assert result["error"] == "timeout after 0.5s"
    assert result["exit_code"] == -signal.SIGKILL


def test_cancel(master: FakeMaster, start_worker) -> None:
    start_worker()
    master.run("c1", py("import time; print('go', flush=True); time.sleep(1000)"))
    wait_for(lambda: master.output("c1") == "go\n", what="the task to start")
    pid = master.messages("task.started", "c1")[0]["pid"]
    assert master.request("task.cancel", attempt="c1")["result"] == {"known": True}
    result = master.wait_finished("c1")
    assert result["error"] == "canceled"
    assert result["exit_code"] == -signal.SIGTERM
    assert gone(pid)
    assert master.request("task.cancel", attempt="nope")["result"] == {"known": False}


def test_slot_limit_and_repeated_orders(master: FakeMaster, start_worker) -> None:
    start_worker("--slots", "1")
    assert "result" in master.run("s1", ["sleep", "1000"])
    busy = master.run("s2", ["true"])
    assert busy["error"]["code"] == -32009
    assert busy["error"]["data"]["reason"] == "no_free_slot"
    assert master.run("s1", ["sleep", "1000"])["result"] == {}  # same attempt: idempotent
    assert len(master.messages("task.started", "s1")) == 1
    master.request("task.cancel", attempt="s1")
    master.wait_finished("s1")
    assert "result" in master.run("s3", ["true"])  # the slot is free again
    assert master.wait_finished("s3")["exit_code"] == 0


def test_a_result_does_not_wait_for_the_answer_to_another(master: FakeMaster, start_worker) -> None:
    """task.finished is answered once the master committed it; the worker does not hold the
    next result back until then (the calls are pipelined), and sends each result once."""
    start_worker("--slots", "2")
    master.held.add("slow")
    master.run("slow", ["true"])
    master.wait_finished("slow")
    master.run("quick", ["true"])
    master.wait_finished("quick", timeout=10)  # while the answer about "slow" is still held
    master.release("slow")
    master.run("after", ["true"])
    master.wait_finished("after")
    assert len(master.messages("task.finished", "slow")) == 1
    assert len(master.messages("task.finished", "quick")) == 1
    wait_for(
        lambda: any(p.get("running") == [] for p in master.messages("heartbeat")),
        what="a heartbeat with nothing running",
    )


def test_an_unanswered_result_is_sent_again_on_the_next_connection(
    master: FakeMaster, start_worker
) -> None:
    start_worker()
    master.held.add("lost")
    master.run("lost", ["true"])
    master.wait_finished("lost")
    master.drop_connections()
    wait_for(lambda: len(master.messages("hello")) >= 2, what="the worker reconnecting")
    assert "lost" in master.messages("hello")[-1]["attempts"]
    wait_for(
        lambda: len(master.messages("task.finished", "lost")) >= 2,
        what="the result sent again",
    )
    master.release("lost")


def test_tasks_get_only_stdin_stdout_and_stderr_and_no_descriptor_leaks(
    master: FakeMaster, start_worker
) -> None:
    """The C spawn path closes every other descriptor in the child; the worker closes each
    task's pipe: its own descriptors do not grow with the tasks it ran."""
    worker = start_worker("--slots", "4")
    code = "import os; print(sorted(os.listdir('/proc/self/fd')), os.readlink('/proc/self/fd/0'))"
    master.run("fd0", py(code))
    assert master.wait_finished("fd0")["exit_code"] == 0
    assert master.output("fd0").split() == ["['0',", "'1',", "'2',", "'3']", "/dev/null"]
    pid = worker.proc.pid
    before = len(os.listdir(f"/proc/{pid}/fd"))
    for n in range(20):
        master.run(f"many{n}", ["true"])
        master.wait_finished(f"many{n}")
    assert len(os.listdir(f"/proc/{pid}/fd")) <= before
    zombies = [c for c in psutil.Process(pid).children() if gone(c.pid)]
    assert zombies == [], "every task was reaped"


FIRST_TASKS = """
import sys
from pathlib import Path
import gevent
from farmhand.worker.reports import ReportQueue
from farmhand.worker.taskorder import TaskOrder
from farmhand.worker.taskpolicy import TaskPolicy
from farmhand.worker.taskprocess import TaskProcess

policy, reports = TaskPolicy(Path(sys.argv[1])), ReportQueue()
for n, argv in enumerate([["true"], ["true"], [sys.executable, "-c", "raise SystemExit(3)"]]):
    order = TaskOrder.from_params({"attempt": f"a{n}", "task_id": n, "job_id": 1, "argv": argv})
    task = TaskProcess(order, reports=reports, policy=policy)
    task.start()
    with gevent.Timeout(10):
        task.done.wait()
    print(task.exit_code, flush=True)
"""


def test_the_first_tasks_of_a_fresh_process_are_seen_to_exit(tmp_path: Path) -> None:
    """In a process where nothing has watched a child yet (no task guard), a task that exits
    before its exit watcher starts must still be seen: the loop's SIGCHLD handler is in place
    before the spawn (it was not, and the first `true` waited for the next child's exit)."""
    done = subprocess.run(
        [PY, "-c", FIRST_TASKS, str(tmp_path)],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        timeout=60,
    )
    assert done.stdout.split() == [b"0", b"0", b"3"], done.stderr.decode()[-2000:]


def test_stale_result_is_dropped(master: FakeMaster, start_worker) -> None:
    worker = start_worker()
    master.stale.add("old")
    master.run("old", ["true"])
    master.wait_finished("old")
    wait_for(lambda: "stale" in worker.log(), what="the worker to log the stale result")
    master.run("new", ["true"])
    master.wait_finished("new")
    assert len(master.messages("task.finished", "old")) == 1  # not retried


def test_heartbeat_carries_running_attempts(master: FakeMaster, start_worker) -> None:
    start_worker()
    master.run("hb", ["sleep", "1000"])
    wait_for(
        lambda: any(p.get("running") == ["hb"] for p in master.messages("heartbeat")),
        what="a heartbeat naming the running attempt",
    )
    master.request("task.cancel", attempt="hb")
    master.wait_finished("hb")
    seen = len(master.messages("heartbeat"))
    wait_for(
        lambda: any(p.get("running") == [] for p in master.messages("heartbeat")[seen:]),
        what="a heartbeat with nothing running",
    )


def test_master_going_away_mid_task(master: FakeMaster, start_worker, tmp_path: Path) -> None:
    start_worker()
    assert master.wait_hello()["attempts"] == []
    go = tmp_path / "go"
    code = f"""
        import os, time
        for i in range(5):
            print("before", i, flush=True)
        while not os.path.exists({str(go)!r}):
            time.sleep(0.02)
        for i in range(2000):
            print("after", i, flush=True)
    """
    master.run("r1", py(code), progress_regex=r"after (\d+)")
    wait_for(lambda: master.output("r1").count("\n") == 5, what="the first lines")
    before = master.output("r1")
    port = master.port
    master.close()
    go.touch()  # the task goes on, and finishes, while the master is away
    back = FakeMaster(port)
    try:
        hello = back.wait_hello(timeout=30)
        assert "r1" in hello["attempts"]
        result = back.wait_finished("r1")
        assert result["exit_code"] == 0
        assert before + back.output("r1") == "".join(
            [f"before {i}\n" for i in range(5)] + [f"after {i}\n" for i in range(2000)]
        )
        assert back.order_of("r1")[-1] == "task.finished"
        wait_for(lambda: back.messages("heartbeat"), what="a heartbeat")
        assert "r1" not in back.messages("heartbeat")[-1]["running"]
    finally:
        back.close()


def test_output_beyond_1_mib_is_trimmed_while_away(
    master: FakeMaster, start_worker, tmp_path: Path
) -> None:
    start_worker()
    go = tmp_path / "go"
    code = f"""
        import os, sys, time
        while not os.path.exists({str(go)!r}):
            time.sleep(0.02)
        for i in range(30_000):
            sys.stdout.write("%06d " % i + "y" * 93 + "\\n")
    """
    master.run("r2", py(code))
    wait_for(lambda: master.messages("task.started", "r2"), what="the task to start")
    port = master.port
    master.close()
    go.touch()
    back = FakeMaster(port)
    try:
        back.wait_hello(timeout=30)
        assert back.wait_finished("r2")["exit_code"] == 0
        text = back.output("r2")
        assert len(text.encode()) <= (1 << 20) + 200
        assert text.startswith("000000 ")
        assert text.endswith("029999 " + "y" * 93 + "\n")
        assert text.count("[farmhand:") == 1
        start = text.index("[farmhand:")
        end = text.index("\n", start) + 1
        dropped = int(text[start:end].split()[1])
        full = "".join(f"{i:06d} " + "y" * 93 + "\n" for i in range(30_000))
        head, tail = text[:start], text[end:]
        if not full.startswith(head):
            head = head[:-1]  # the newline put before the marker to give it a line of its own
        assert full.startswith(head)
        assert full.endswith(tail)
        assert len(head) + dropped + len(tail) == len(full)
    finally:
        back.close()


def test_progress_is_reported(master: FakeMaster, start_worker) -> None:
    start_worker()
    code = """
        for p in (0, 10, 10.2, 10.4, 55.5, 99.8, 100):
            print(f"rendering {p}%", flush=True)
    """
    master.run("p1", py(code))
    master.wait_finished("p1")
    percents = [p["percent"] for p in master.messages("task.progress", "p1")]
    assert percents[-1] == 100.0
    assert percents == sorted(percents)
    assert 10.2 not in percents  # changes under 0.5 are not worth a message
    assert set(percents) <= {0.0, 10.0, 10.4, 55.5, 99.8, 100.0}


def test_blender_frames_and_bad_regex(master: FakeMaster, start_worker) -> None:
    worker = start_worker()
    code = """
        for frame in range(1, 5):
            print(f"Fra:{frame} Mem:12.00M (Peak 13.00M) | Time:00:00.10 | Rendering", flush=True)
    """
    master.run("b1", py(code), frame_start=1, frame_end=4, progress_regex="(unclosed")
    master.wait_finished("b1")
    percents = [p["percent"] for p in master.messages("task.progress", "b1")]
    assert percents[-1] == 100.0
    assert set(percents) <= {25.0, 50.0, 75.0, 100.0}
    assert "bad progress regex" in worker.log()


def test_sigterm_stops_the_worker_cleanly(master: FakeMaster, start_worker) -> None:
    worker = start_worker()
    master.run("t1", ["sleep", "1000"])
    pid = wait_for(lambda: master.messages("task.started", "t1"))[0]["pid"]
    assert worker.stop() == 0
    assert master.finished("t1")["error"] == "canceled"
    assert gone(pid)
    assert os.path.exists(worker.log_path)
