"""The programs as a user runs them (README.md): flags, bad flags, signals, and a real worker
that registers, goes offline on SIGTERM and reconnects by itself when the master comes back."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import ROOT, MasterProcess, Program, RpcClient, wait_for


def run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / script), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def client_row(port: int, name: str) -> dict[str, Any] | None:
    try:
        with RpcClient(port) as client:
            rows = client.call("clients.list", select=name)["clients"]
    except OSError:
        return None
    return rows[0] if rows else None


def is_online(port: int, name: str) -> bool:
    row = client_row(port, name)
    return bool(row and row["online"])


@pytest.fixture
def master(tmp_path: Path) -> Iterator[MasterProcess]:
    process = MasterProcess(tmp_path / "var")
    yield process
    process.stop()


def start_worker(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> Program:
    return Program(
        "worker.py",
        "--work-dir",
        str(tmp_path / "work"),
        "--log-level",
        "debug",
        *args,
        log_path=tmp_path / f"worker-{len(list(tmp_path.glob('worker-*.log')))}.log",
        env=env,
    )


# -- flags -----------------------------------------------------------------------------------


@pytest.mark.parametrize("script", ["master.py", "worker.py"])
def test_help_exits_0(script: str) -> None:
    result = run(script, "--help")
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout
    assert "--log-level" in result.stdout


@pytest.mark.parametrize(
    ("script", "args"),
    [
        ("master.py", ["--port", "notanumber"]),
        ("master.py", ["--bogus"]),
        ("master.py", ["--log-level", "loud"]),
        ("master.py", ["--port", "70000"]),
        ("worker.py", ["--bogus"]),
        ("worker.py", ["--master", "localhost:notaport"]),
        ("worker.py", ["--slots", "0"]),
        ("worker.py", ["--allow-cwd", "renders"]),
    ],
)
def test_a_bad_flag_exits_2_with_one_line_on_stderr(script: str, args: list[str]) -> None:
    result = run(script, *args)
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"{script}: error:"), lines[0]
    assert "Traceback" not in result.stderr


# -- master signals --------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_master_stops_cleanly_on_a_signal(tmp_path: Path, signum: int) -> None:
    process = MasterProcess(tmp_path / "var")
    try:
        with RpcClient(process.port) as client:
            assert client.call("ping") == "pong"
            process.signal(signum)
            assert client.is_closed(), "a stopping master closes its connections"
        assert process.proc.wait(15) == 0
        log = process.log()
        assert "stopped" in log
        assert "Traceback" not in log
    finally:
        process.close()


# -- a real worker ---------------------------------------------------------------------------


def test_a_worker_appears_online_with_its_tags_and_slots(
    master: MasterProcess, tmp_path: Path
) -> None:
    worker = start_worker(
        tmp_path, "--master", master.address, "--name", "w1", "--tags", "a,b", "--slots", "2"
    )
    try:
        wait_for(lambda: is_online(master.port, "w1"), what="w1 online")
        row = client_row(master.port, "w1")
        assert row is not None
        assert row["role"] == "worker"
        assert row["tags"] == ["a", "b"]
        assert row["slots"] == 2
        assert row["status"] == "idle"
        assert row["enabled"] is True
    finally:
        worker.kill()


def test_a_worker_keeps_beating_past_the_heartbeat_timeout(tmp_path: Path) -> None:
    process = MasterProcess(tmp_path / "var", "--heartbeat-s", "0.3")
    worker = start_worker(tmp_path, "--master", process.address, "--name", "w1")
    try:
        wait_for(lambda: is_online(process.port, "w1"), what="w1 online")
        # Watch the client through two heartbeat timeouts (0.9 s each): it never drops.
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            assert is_online(process.port, "w1"), "the worker's heartbeats must keep it online"
            time.sleep(0.1)
        assert "offline" not in process.log()
    finally:
        worker.kill()
        process.stop()


def test_worker_sigterm_exits_0_and_goes_offline(master: MasterProcess, tmp_path: Path) -> None:
    worker = start_worker(tmp_path, "--master", master.address, "--name", "w1")
    try:
        wait_for(lambda: is_online(master.port, "w1"), what="w1 online")
        assert worker.stop() == 0
        wait_for(lambda: not is_online(master.port, "w1"), timeout=5, what="w1 offline")
        assert "Traceback" not in worker.log()
    finally:
        worker.kill()


def test_worker_sigint_exits_0(master: MasterProcess, tmp_path: Path) -> None:
    worker = start_worker(tmp_path, "--master", master.address, "--name", "w1")
    try:
        wait_for(lambda: is_online(master.port, "w1"), what="w1 online")
        worker.signal(signal.SIGINT)
        assert worker.proc.wait(15) == 0
    finally:
        worker.kill()


def test_a_worker_stops_at_once_while_it_waits_to_reconnect(tmp_path: Path) -> None:
    worker = start_worker(tmp_path, "--master", f"127.0.0.1:{free_port()}", "--name", "w1")
    try:
        wait_for(lambda: "reconnecting in" in worker.log(), what="the worker backing off")
        worker.signal(signal.SIGTERM)
        assert worker.proc.wait(5) == 0
    finally:
        worker.kill()


def test_a_worker_reconnects_when_a_new_master_takes_the_port(tmp_path: Path) -> None:
    port = free_port()
    first = MasterProcess(tmp_path / "var", "--port", str(port))
    assert first.port == port
    worker = start_worker(tmp_path, "--master", f"127.0.0.1:{port}", "--name", "w1")
    try:
        wait_for(lambda: is_online(port, "w1"), what="w1 online at the first master")
        client_id = client_row(port, "w1")["id"]  # type: ignore[index]
        assert first.stop() == 0
        wait_for(lambda: "reconnecting in" in worker.log(), what="the worker backing off")
        second = MasterProcess(tmp_path / "var", "--port", str(port))
        try:
            wait_for(lambda: is_online(port, "w1"), timeout=15, what="w1 online again")
            assert client_row(port, "w1")["id"] == client_id  # type: ignore[index]
        finally:
            second.stop()
    finally:
        worker.kill()


def test_a_worker_waits_for_a_master_that_is_not_up_yet(tmp_path: Path) -> None:
    port = free_port()
    worker = start_worker(tmp_path, "--master", f"127.0.0.1:{port}", "--name", "early")
    try:
        wait_for(lambda: "reconnecting in" in worker.log(), what="the worker backing off")
        process = MasterProcess(tmp_path / "var", "--port", str(port))
        try:
            wait_for(lambda: is_online(port, "early"), timeout=15, what="early online")
        finally:
            process.stop()
    finally:
        worker.kill()


def test_farmhand_master_env_names_the_master(master: MasterProcess, tmp_path: Path) -> None:
    worker = start_worker(
        tmp_path, "--name", "envw", env={"FARMHAND_MASTER": f"127.0.0.1:{master.port}"}
    )
    try:
        wait_for(lambda: is_online(master.port, "envw"), what="envw online")
    finally:
        worker.kill()


def test_the_master_flag_wins_over_the_env(master: MasterProcess, tmp_path: Path) -> None:
    worker = start_worker(
        tmp_path,
        "--master",
        master.address,
        "--name",
        "flagw",
        env={"FARMHAND_MASTER": f"127.0.0.1:{free_port()}"},
    )
    try:
        wait_for(lambda: is_online(master.port, "flagw"), what="flagw online")
    finally:
        worker.kill()


def test_farmhand_key_env_lets_a_worker_in_when_keys_are_required(tmp_path: Path) -> None:
    process = MasterProcess(tmp_path / "var", "--require-key")
    admin_key = (process.data_dir / "admin.key").read_text().strip()
    try:
        with RpcClient(process.port) as admin:
            admin.call("hello", role="api", name="", proto=1, key=admin_key)
            worker_key = admin.call("keys.create", role="worker")["key"]
            worker = start_worker(
                tmp_path,
                "--master",
                process.address,
                "--name",
                "keyed",
                env={"FARMHAND_KEY": worker_key},
            )
            try:
                wait_for(
                    lambda: any(
                        row["online"]
                        for row in admin.call("clients.list", select="keyed")["clients"]
                    ),
                    what="keyed online",
                )
            finally:
                worker.kill()
    finally:
        process.stop()
