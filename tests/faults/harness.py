"""What the fault scenarios share: a farm of real programs (master.py on a port that survives its
restarts, worker.py processes), tasks that write a ledger line each time they run, submitters
that keep submitting while things break, and the checker that reads the ledger afterwards.

The ledger is the ground truth for execution: each run of a task appends `JOB TASK PID` to one
file (O_APPEND, a line far below PIPE_BUF, so lines never interleave). A task with two lines ran
twice; an acknowledged task with none was lost. bench/faults.py runs the same code at full size.
"""

from __future__ import annotations

import contextlib
import random
import re
import signal
import socket
import sqlite3
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support import MasterProcess, Program, RpcClient, RpcFailure, wait_for


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ledger_argv(ledger: Path, sleep_s: float = 0.0) -> list[str]:
    """A task that records its run in `ledger`, then sleeps (no shell between farmhand and sh)."""
    script = f"echo {{job}} {{task}} $$ >> '{ledger}'"
    if sleep_s > 0:
        script += f"; sleep {sleep_s}"
    return ["sh", "-c", script]


def read_ledger(ledger: Path) -> Counter[tuple[int, int]]:
    runs: Counter[tuple[int, int]] = Counter()
    if ledger.exists():
        for line in ledger.read_text().splitlines():
            parts = line.split()
            if len(parts) == 3:
                runs[(int(parts[0]), int(parts[1]))] += 1
    return runs


def integrity(db_path: Path) -> str:
    """SQLite's own verdict on the file ("ok"), read while no master has it open."""
    with contextlib.closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as db:
        return str(db.execute("PRAGMA integrity_check").fetchone()[0])


class Farm:
    """A master on a fixed free port (so workers find it again after a restart) and workers."""

    def __init__(self, root: Path, *master_flags: str) -> None:
        self.root = root
        self.data_dir = root / "var"
        self.port = free_port()
        self.master_flags = master_flags
        self.ledger = root / "ledger.txt"
        self.master: MasterProcess | None = None
        self.workers: list[Program] = []
        self.restarts = 0

    @property
    def db_path(self) -> Path:
        return self.data_dir / "farmhand.db"

    @property
    def master_log(self) -> Path:
        return self.data_dir / "master.log"

    def start_master(self) -> MasterProcess:
        # info, not the fixture's debug: per-task debug lines would slow the master under load
        flags = ("--port", str(self.port), "--log-level", "info", *self.master_flags)
        self.master = MasterProcess(self.data_dir, *flags)
        return self.master

    def kill_master(self) -> None:
        assert self.master is not None
        self.master.kill()  # SIGKILL
        self.master = None

    def restart_master(self) -> MasterProcess:
        self.restarts += 1
        return self.start_master()

    def start_worker(self, name: str, *flags: str) -> Program:
        worker = Program(
            "worker.py",
            "--master",
            f"127.0.0.1:{self.port}",
            "--name",
            name,
            "--work-dir",
            str(self.root / "work" / name),
            "--log-level",
            "info",
            *flags,
            log_path=self.root / f"{name}.log",
        )
        self.workers.append(worker)
        return worker

    def api(self) -> RpcClient:
        return RpcClient(self.port)

    def wait_online(self, names: list[str], timeout: float = 20.0) -> None:
        def all_online() -> bool:
            try:
                with self.api() as api:
                    rows = api.call("clients.list", select=" ".join(names))["clients"]
            except OSError:
                return False
            return sum(row["online"] for row in rows) == len(names)

        wait_for(all_online, timeout=timeout, interval=0.1, what=f"{names} online")

    def stop(self) -> None:
        for worker in self.workers:
            with contextlib.suppress(Exception):
                worker.stop(timeout=15)
        self.workers.clear()
        if self.master is not None:
            with contextlib.suppress(Exception):
                self.master.stop(timeout=20)
            self.master = None


@dataclass
class Submitter:
    """Submits small ledger jobs in a thread until stopped; keeps the acknowledged ones."""

    port: int
    ledger: Path
    tasks_per_job: int = 2
    pause_s: float = 0.05
    sleep_s: float = 0.05
    acked: dict[int, int] = field(default_factory=dict)  # job id → tasks
    attempts: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Submitter:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        api: RpcClient | None = None
        argv = ledger_argv(self.ledger, self.sleep_s)
        while not self._stop.is_set():
            try:
                if api is None:
                    api = RpcClient(self.port, timeout=5.0)
                self.attempts += 1
                result = api.call(
                    "jobs.submit",
                    name="ledger",
                    argv=argv,
                    frames=f"1-{self.tasks_per_job}",
                )
                self.acked[result["job_id"]] = result["tasks"]
            except (OSError, ConnectionError, RpcFailure, AssertionError):
                # The master is down or the reply was lost: not acknowledged, try again.
                if api is not None:
                    api.close()
                    api = None
                self._stop.wait(0.1)
                continue
            self._stop.wait(self.pause_s)
        if api is not None:
            api.close()


@dataclass
class Verdict:
    acked_jobs: int
    acked_tasks: int
    executions: int
    lost: int
    duplicated: int
    recovered: int
    confirmed: int
    integrity: str
    wal_bytes: int

    def line(self) -> str:
        return (
            f"acknowledged jobs {self.acked_jobs} ({self.acked_tasks} tasks), executions "
            f"{self.executions}, lost {self.lost}, duplicated executions {self.duplicated}, "
            f"recovered in flight {self.recovered} (confirmed by their workers "
            f"{self.confirmed}), integrity {self.integrity}, WAL {self.wal_bytes} bytes"
        )


def wait_all_completed(port: int, timeout: float) -> dict[str, Any]:
    """Every stored job completed; returns the last jobs.list."""

    def done() -> dict[str, Any] | None:
        with RpcClient(port) as api:
            listing = api.call("jobs.list", limit=10_000)
        pending = [job for job in listing["jobs"] if job["status"] != "completed"]
        return None if pending else listing

    return wait_for(done, timeout=timeout, interval=0.25, what="every job completed")


def check(farm: Farm, acked: dict[int, int], listing: dict[str, Any]) -> Verdict:
    """Compare what was acknowledged, what the master stored and what the ledger saw run."""
    runs = read_ledger(farm.ledger)
    stored = {job["id"]: job for job in listing["jobs"]}
    lost = 0
    for job_id, tasks in acked.items():
        job = stored.get(job_id)
        if job is None or job["status"] != "completed":
            lost += tasks
            continue
        lost += sum(1 for index in range(tasks) if runs[(job_id, index)] == 0)
    duplicated = sum(count - 1 for count in runs.values() if count > 1)
    log = farm.master_log.read_text(errors="replace")
    recovered = sum(int(n) for n in re.findall(r"\((\d+) in flight, awaiting", log))
    confirmed = len(re.findall(r"confirmed on ", log))
    farm.stop()
    wal = farm.db_path.with_name(farm.db_path.name + "-wal")
    return Verdict(
        acked_jobs=len(acked),
        acked_tasks=sum(acked.values()),
        executions=sum(runs.values()),
        lost=lost,
        duplicated=duplicated,
        recovered=recovered,
        confirmed=confirmed,
        integrity=integrity(farm.db_path),
        wal_bytes=wal.stat().st_size if wal.exists() else 0,
    )


def crash_rounds(
    root: Path,
    rounds: int,
    *,
    workers: int = 2,
    slots: int = 4,
    submitters: int = 1,
    tasks_per_job: int = 4,
    pause_s: float = 0.02,
    sleep_s: float = 0.0,
    round_s: tuple[float, float] = (0.4, 1.2),
    drain_timeout_s: float = 120.0,
    progress: Any = None,
    seed: int | None = None,
) -> Verdict:
    """kill -9 of the master `rounds` times while submitters submit and workers run tasks."""
    rng = random.Random(seed)
    farm = Farm(root)
    try:
        farm.start_master()
        names = [f"w{n}" for n in range(1, workers + 1)]
        for name in names:
            farm.start_worker(name, "--slots", str(slots))
        farm.wait_online(names)
        subs = [
            Submitter(farm.port, farm.ledger, tasks_per_job, pause_s, sleep_s).start()
            for _ in range(submitters)
        ]
        for number in range(1, rounds + 1):
            time.sleep(rng.uniform(*round_s))
            farm.kill_master()
            farm.restart_master()
            if progress is not None:
                progress(number, sum(len(s.acked) for s in subs))
        time.sleep(rng.uniform(*round_s))
        for sub in subs:
            sub.stop()
        acked: dict[int, int] = {}
        for sub in subs:
            acked.update(sub.acked)
        listing = wait_all_completed(farm.port, drain_timeout_s)
        return check(farm, acked, listing)
    finally:
        farm.stop()


def pause(program: Program | MasterProcess) -> None:
    program.proc.send_signal(signal.SIGSTOP)


def resume(program: Program | MasterProcess) -> None:
    program.proc.send_signal(signal.SIGCONT)
