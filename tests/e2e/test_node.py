"""node.py end to end: a real master, a real node and its real agents (`worker.py`, `hwagent.py`
when it is there, plain programs). Every wait polls; pids are checked with psutil, so a zombie
counts as gone and an orphan left running fails the test.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.support import (
    ROOT,
    ConsoleClient,
    MasterProcess,
    Program,
    RpcClient,
    RpcFailure,
    wait_for,
)
from tests.support import agent as agent_connection

pytestmark = pytest.mark.timeout(90)

NODE = "node-a"
# A long-running plain program: prints a line, then sleeps until told to stop.
SLEEPER = "import sys, time; print('up', *sys.argv[1:], flush=True); time.sleep(600)"
# Writes a 100-byte line every millisecond: fills a small log quickly.
CHATTY = "import time\nwhile True:\n    print('x' * 99, flush=True)\n    time.sleep(0.001)"
CHATTY_MAX_BYTES = 2000
CHATTY_BACKUPS = 2


def node_cmd(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "node.py"), "--log-dir", str(tmp_path / "logs"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )


@functools.cache
def hwagent_works() -> bool:
    script = ROOT / "hwagent.py"
    help_run = [sys.executable, str(script), "--help"]
    return script.exists() and subprocess.run(help_run, capture_output=True).returncode == 0


def argv_agent(name: str, code: str, *args: str, extra: str = "") -> str:
    argv = ", ".join(json.dumps(word) for word in [sys.executable, "-c", code, *args])
    return f'[[agent]]\nname = "{name}"\nprogram = [{argv}]\n{extra}\n'


def worker_agent(name: str, tmp_path: Path) -> str:
    return (
        f'[[agent]]\nname = "{name}"\nprogram = "worker"\n'
        f'flags = {{ work_dir = "{tmp_path / "work" / name}" }}\n'
    )


def third_agent(tmp_path: Path) -> str:
    """hwagent tailing a file when hwagent.py is there; until then a third worker."""
    if hwagent_works():
        tailed = tmp_path / "tailed.txt"
        tailed.touch()
        return (
            '[[agent]]\nname = "hw1"\nprogram = "hwagent"\n'
            f'flags = {{ driver = "tail", device = "{tailed}", '
            f'state_file = "{tmp_path / "hw1.state"}" }}\n'
        )
    return worker_agent("hw1", tmp_path)


class Node(Program):
    def __init__(self, tmp_path: Path, master: str, config: str, *args: str) -> None:
        self.config = tmp_path / "agents.toml"
        self.config.write_text(config)
        self.log_dir = tmp_path / "logs"
        flags = f"--master {master} --name {NODE} --config {self.config} --log-dir {self.log_dir}"
        flags += " --log-level debug"
        super().__init__("node.py", *flags.split(), *args, log_path=tmp_path / "node.out")


@pytest.fixture
def master(tmp_path: Path) -> Iterator[MasterProcess]:
    process = MasterProcess(tmp_path / "var")
    yield process
    process.stop()


def procs(port: int) -> dict[str, dict[str, Any]]:
    with RpcClient(port) as client:
        rows = client.call("procs.list")["procs"]
    return {row["agent"]: row for row in rows if row["node"] == NODE}


def online(port: int) -> set[str]:
    with RpcClient(port) as client:
        return {row["name"] for row in client.call("clients.list")["clients"] if row["online"]}


def states(port: int) -> dict[str, str]:
    return {agent: row["state"] for agent, row in procs(port).items()}


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


# -- the whole story --------------------------------------------------------------------------
def test_node_supervises_restarts_rotates_and_stops_clean(
    tmp_path: Path, master: MasterProcess
) -> None:
    config = (
        worker_agent("w1", tmp_path)
        + worker_agent("w2", tmp_path)
        + third_agent(tmp_path)
        + argv_agent(
            "flaky",
            "import sys; print('giving up'); sys.exit(3)",
            extra="backoff_initial_s = 0.1\nstart_retries = 3",
        )
        + argv_agent(
            "chatty",
            CHATTY,
            extra=f"log_max_bytes = {CHATTY_MAX_BYTES}\nlog_backups = {CHATTY_BACKUPS}",
        )
    )
    watcher = RpcClient(master.port)
    watcher.call("subscribe", topics=["procs"])
    node = Node(tmp_path, master.address, config)
    try:
        up = {"w1": "running", "w2": "running", "hw1": "running", "chatty": "running"}
        wait_for(
            lambda: states(master.port) == {**up, "flaky": "fatal"},
            20,
            what="agents up, flaky fatal",
        )
        expected = {NODE, "w1", "w2"} | ({"hw1"} if hwagent_works() else set())
        wait_for(lambda: expected <= online(master.port), 15, what="agents online")
        # flaky failed fast 3 times, backing off between tries, then went fatal.
        flaky = procs(master.port)["flaky"]
        assert flaky["restarts"] == 2 and flaky["last_exit"] == 3 and flaky["pid"] is None
        assert "agent flaky: starting -> backoff" in node.log()
        # Topic `procs` pushed the changes as they came.
        watcher.wait_event(
            lambda event: (
                event["topic"] == "procs"
                and event["data"]["node"] == NODE
                and any(
                    r["agent"] == "flaky" and r["state"] == "fatal" for r in event["data"]["procs"]
                )
            )
        )
        watcher.close()

        # kill -9 a worker: the node restarts it at once and it comes back online.
        old = procs(master.port)["w1"]
        os.kill(old["pid"], signal.SIGKILL)
        wait_for(
            lambda: (
                (row := procs(master.port)["w1"])["pid"] not in (None, old["pid"])
                and row["state"] == "running"
            ),
            15,
            what="w1 restarted",
        )
        w1 = procs(master.port)["w1"]
        assert w1["restarts"] == 1 and w1["last_exit"] == -signal.SIGKILL
        wait_for(lambda: "w1" in online(master.port), 15, what="w1 back online")

        # The console: the table, and procs.restart taking flaky out of fatal.
        with ConsoleClient(master.port) as console:
            table = console.command("procs")
            for agent in ("w1", "w2", "hw1", "flaky", "chatty"):
                assert agent in table
            assert "fatal" in table and "5 processes on 1 node (4 running)" in table
            reply = console.command("procs restart flaky")
            assert reply.startswith("flaky on node-a: ") and "fatal" not in reply, reply
            old_w2 = procs(master.port)["w2"]["pid"]
            reply = console.command("procs restart w2")
            assert reply.startswith("w2 on node-a: running, pid "), reply
            assert procs(master.port)["w2"]["pid"] != old_w2
        wait_for(
            lambda: (
                procs(master.port)["flaky"]["restarts"] == 5
                and procs(master.port)["flaky"]["state"] == "fatal"
            ),
            15,
            what="flaky fatal again after 3 more tries",
        )

        # The chatty agent's log rotated at the limit, keeping exactly its backups.
        log_dir = node.log_dir
        wait_for(lambda: (log_dir / "chatty.log.2").exists(), 15, what="two rotations")
        wait_for(lambda: procs(master.port)["chatty"]["state"] == "running", 5)
        files = sorted(p.name for p in log_dir.glob("chatty.log*"))
        assert files == ["chatty.log", "chatty.log.1", "chatty.log.2"]
        for name in files[1:]:
            size = (log_dir / name).stat().st_size
            assert CHATTY_MAX_BYTES - 200 < size <= CHATTY_MAX_BYTES
        wait_for(lambda: (log_dir / "flaky.log").read_text().count("giving up") == 6, 5)
        assert "pid" in (log_dir / "w1.log").read_text()

        # `node.py status` asks the node itself, without the master.
        status = node_cmd(tmp_path, "status")
        assert status.returncode == 0, status.stderr
        lines = status.stdout.splitlines()
        assert lines[0].split()[:3] == ["AGENT", "STATE", "PID"]
        rows = {line.split()[0]: line.split()[1] for line in lines[1:]}
        assert rows == dict.fromkeys(["chatty", "hw1", "w1", "w2"], "RUNNING") | {"flaky": "FATAL"}
        # The control socket speaks JSON-RPC, the node's orders as methods.
        control_socket_speaks_json_rpc(log_dir / "node.sock")

        # SIGTERM: every child stops, nothing is left behind, exit status 0.
        pids = [row["pid"] for row in procs(master.port).values() if row["pid"]]
        children = [p.pid for p in psutil.Process(node.proc.pid).children(recursive=True)]
        assert set(pids) <= set(children)
        assert node.stop(timeout=30) == 0
        for pid in children:
            wait_for(lambda pid=pid: not alive(pid), 10, what=f"pid {pid} gone")
        assert not (log_dir / "node.sock").exists()
        # The master keeps the last report, marked stale once the node is offline.
        wait_for(lambda: all(row["stale"] for row in procs(master.port).values()), 10)
        assert set(states(master.port).values()) == {"stopped"}
    finally:
        watcher.close()
        node.kill()


# -- reload -----------------------------------------------------------------------------------
def test_reload_starts_stops_and_restarts_the_right_agents(
    tmp_path: Path, master: MasterProcess
) -> None:
    node = Node(
        tmp_path,
        master.address,
        argv_agent("a", SLEEPER, "a") + argv_agent("b", SLEEPER, "b") + argv_agent("c", SLEEPER),
    )
    try:
        wait_for(lambda: set(states(master.port).values()) == {"running"}, 15, what="running")
        before = {agent: row["pid"] for agent, row in procs(master.port).items()}
        assert set(before) == {"a", "b", "c"}

        # Remove a, change b's argv, keep c, add d.
        node.config.write_text(
            argv_agent("b", SLEEPER, "b", "changed")
            + argv_agent("c", SLEEPER)
            + argv_agent("d", SLEEPER, "d")
        )
        with RpcClient(master.port) as client:
            result = client.call("procs.reload", node=NODE)
        assert result == {
            "node": NODE,
            "added": ["d"],
            "removed": ["a"],
            "changed": ["b"],
            "unchanged": ["c"],
        }
        wait_for(
            lambda: states(master.port) == {"b": "running", "c": "running", "d": "running"},
            15,
            what="a gone, b and d running",
        )
        after = {agent: row["pid"] for agent, row in procs(master.port).items()}
        assert after["c"] == before["c"]
        assert after["b"] != before["b"]
        wait_for(lambda: not alive(before["a"]) and not alive(before["b"]), 10)
        assert "up b changed" in (node.log_dir / "b.log").read_text()

        # A bad file: refused with the line of the mistake; every agent stays as it was.
        node.config.write_text(
            argv_agent("b", SLEEPER) + '[[agent]]\nname = "e"\nprogram = "wroker"\n'
        )
        with RpcClient(master.port) as client, pytest.raises(RpcFailure) as refused:
            client.call("procs.reload", node=NODE)
        assert refused.value.code == -32602
        assert "agents.toml:7:" in refused.value.error["message"]
        assert "unknown program 'wroker'" in refused.value.error["message"]
        # The same through SIGHUP and the local socket.
        node.signal(signal.SIGHUP)
        wait_for(lambda: node.log().count("reload refused") >= 2, 10, what="SIGHUP refused")
        local = node_cmd(tmp_path, "reload")
        assert local.returncode == 1 and "agents.toml:7:" in local.stderr
        assert {agent: row["pid"] for agent, row in procs(master.port).items()} == after
        assert all(alive(pid) for pid in after.values())

        # Local start/stop through the control socket.
        stopped = node_cmd(tmp_path, "stop", "d")
        assert (stopped.returncode, stopped.stdout.strip()) == (0, "d: stopped")
        wait_for(lambda: not alive(after["d"]), 10, what="d stopped")
        started = node_cmd(tmp_path, "start", "d")
        assert started.returncode == 0 and started.stdout.startswith("d: running, pid ")
        unknown = node_cmd(tmp_path, "restart", "zz")
        assert unknown.returncode == 1 and "no agent named 'zz'" in unknown.stderr
        assert node.stop(timeout=30) == 0
    finally:
        node.kill()


def control_socket_speaks_json_rpc(path: Path) -> None:
    with socket.socket(socket.AF_UNIX) as raw:
        raw.settimeout(10)
        raw.connect(str(path))
        raw.sendall(b'{"jsonrpc":"2.0","id":1,"method":"proc.list"}\nnot json\n')
        replies = raw.makefile("rb")
        # Orders run in their own greenlets: answers come as they are ready, matched by id.
        answers = {reply["id"]: reply for reply in (json.loads(replies.readline()) for _ in "ab")}
        assert answers[None]["error"]["code"] == -32700
        assert answers[1]["result"]["node"] == NODE
        assert {row["agent"] for row in answers[1]["result"]["procs"]} >= {"w1", "w2"}
        raw.sendall(b'{"jsonrpc":"2.0","id":2,"method":"proc.stop","params":{}}\n')
        refused = json.loads(replies.readline())
        assert (refused["id"], refused["error"]["code"]) == (2, -32602)


# -- without the master -----------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_agents_run_without_the_master_and_are_reported_when_it_comes(tmp_path: Path) -> None:
    port = free_port()
    node = Node(tmp_path, f"127.0.0.1:{port}", argv_agent("solo", SLEEPER))
    master = None
    try:
        wait_for(lambda: "RUNNING" in node_cmd(tmp_path, "status").stdout, 15, what="solo running")
        master = MasterProcess(tmp_path / "var", "--port", str(port))
        # The runtime's reconnect backoff tops out at 30 s; it starts at 0.5 s.
        wait_for(lambda: states(master.port) == {"solo": "running"}, 45, what="solo reported")
        assert node.stop(timeout=30) == 0
    finally:
        node.kill()
        if master is not None:
            master.stop()


# -- the master's side, with nodes played by hand ------------------------------------------------
def report(node: RpcClient, *rows: tuple[str, str]) -> None:
    node.notify(
        "procs.update",
        procs=[
            {"agent": agent, "state": state, "pid": None, "uptime_s": None, "restarts": 0}
            for agent, state in rows
        ],
    )


def test_master_finds_the_owner_and_marks_offline_nodes_stale(master: MasterProcess) -> None:
    one = agent_connection(master.port, "fake-1", role="node")
    two = agent_connection(master.port, "fake-2", role="node")
    report(one, ("shared", "running"), ("only1", "running"))
    report(two, ("shared", "running"))
    with RpcClient(master.port) as client:
        wait_for(lambda: len(client.call("procs.list")["procs"]) == 3, 5, what="both reports")
        ambiguous = client.request("procs.restart", agent="shared")["error"]
        assert ambiguous["code"] == -32602 and "fake-1, fake-2" in ambiguous["message"]
        unknown = client.request("procs.stop", agent="nowhere")["error"]
        assert unknown["code"] == -32602 and "give its node" in unknown["message"]
        assert client.request("procs.list", node="fake-9")["error"]["code"] == -32004
        # A worker may not pose as a node.
        worker = agent_connection(master.port, "not-a-node")
        assert worker.request("procs.update", procs=[])["error"]["code"] == -32009
        worker.close()
        one.close()
        wait_for(
            lambda: all(r["stale"] for r in client.call("procs.list", node="fake-1")["procs"]),
            10,
            what="fake-1 stale",
        )
        assert not any(r["stale"] for r in client.call("procs.list", node="fake-2")["procs"])
        offline = client.request("procs.restart", agent="only1")["error"]
        assert offline["code"] == -32009 and "offline" in offline["message"]
    two.close()


# -- the command line -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("config", "where", "words"),
    [
        (
            '[[agent]]\nname = "a"\nprogram = worker\nrestart = "always"\n',
            "agents.toml:3:",
            "bad TOML",
        ),
        ('[[agent]]\nname = "a"\nprogram = [\n', "agents.toml:3:", "at the end of the file"),
        ('\n[[agent]]\nname = "a"\nprogram = "wroker"\n', "agents.toml:4:", "unknown program"),
        ('[[agent]]\nprogram = "worker"\n', "agents.toml:1:", "has no name"),
        (
            '[[agent]]\nname = "a"\nprogram = ["x"]\n[[agent]]\nname = "a"\nprogram = ["y"]\n',
            "agents.toml:4:",
            "duplicate agent name 'a'",
        ),
    ],
)
def test_bad_configuration_is_one_line_naming_the_line_and_exit_2(
    tmp_path: Path, config: str, where: str, words: str
) -> None:
    (tmp_path / "agents.toml").write_text(config)
    result = node_cmd(tmp_path, "--config", str(tmp_path / "agents.toml"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert where in lines[0] and words in lines[0]


def test_flags_help_and_the_local_commands_without_a_node(tmp_path: Path) -> None:
    assert node_cmd(tmp_path, "--help").returncode == 0
    bad = node_cmd(tmp_path, "--frobnicate")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert node_cmd(tmp_path, "start").returncode == 2  # needs an AGENT
    assert node_cmd(tmp_path, "status", "x").returncode == 2
    nobody = node_cmd(tmp_path, "status")
    assert nobody.returncode == 1 and "no node answers" in nobody.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
@pytest.mark.parametrize("unit", ["farmhand-master.service", "farmhand-node.service"])
def test_systemd_units_verify(tmp_path: Path, unit: str) -> None:
    # verify checks that ExecStart's binary exists: point it at this checkout's interpreter.
    text = (ROOT / "contrib" / "systemd" / unit).read_text()
    text = text.replace("/opt/farmhand/.venv/bin/python", sys.executable)
    (tmp_path / unit).write_text(text)
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(tmp_path / unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    problems = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if unit in line  # other units on this machine may have their own complaints
    ]
    assert result.returncode == 0 and not problems, result.stdout + result.stderr


@pytest.mark.parametrize("unit", ["farmhand-master.service", "farmhand-node.service"])
def test_systemd_units_start_when_an_optional_path_is_missing(unit: str) -> None:
    """Issue 10 finding 8: `ReadWritePaths=/srv/farmhand` fails the whole unit (status
    226/NAMESPACE) when that directory does not exist. `systemd-analyze verify` does not check
    paths, and this machine has no running systemd to start a unit in, so the test reads the
    unit: every path a sandboxing directive names must either be one the unit makes itself
    (StateDirectory=, under /var/lib) or carry systemd's `-` prefix, "ignore when missing"."""
    settings: dict[str, list[str]] = {}
    for line in (ROOT / "contrib" / "systemd" / unit).read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.lstrip().startswith("#"):
            settings.setdefault(key.strip(), []).extend(value.split())
    made = {f"/var/lib/{name}" for name in settings.get("StateDirectory", [])}
    for directive in ("ReadWritePaths", "ReadOnlyPaths", "InaccessiblePaths"):
        for path in settings.get(directive, []):
            assert path.startswith("-") or path in made, (
                f"{unit}: {directive}={path} fails the unit when {path} is missing: write -{path}"
            )


def test_a_node_and_a_worker_with_default_names_on_one_machine_do_not_collide(
    tmp_path: Path, master: MasterProcess
) -> None:
    # Issue 10 finding 3: both defaulted to the host name and replaced each other ~3 times a
    # second. The node's default is now HOST-node; the worker keeps HOST.
    host = socket.gethostname()
    (tmp_path / "agents.toml").write_text("")
    worker = Program(
        "worker.py",
        *f"--master {master.address} --work-dir {tmp_path / 'work'}".split(),
        log_path=tmp_path / "worker.log",
    )
    node = Program(
        "node.py",
        *f"--master {master.address} --config {tmp_path / 'agents.toml'}".split(),
        "--log-dir",
        str(tmp_path / "logs"),
        log_path=tmp_path / "node.out",
    )
    try:
        wait_for(lambda: {host, f"{host}-node"} <= online(master.port), 20, what="both online")
        with RpcClient(master.port) as client:
            roles = {row["name"]: row["role"] for row in client.call("clients.list")["clients"]}
            assert roles[host] == "worker" and roles[f"{host}-node"] == "node"
            # Both stay connected: neither hello replaces the other.
            for _ in range(10):
                rows = client.call("clients.list")["clients"]
                assert {r["name"] for r in rows if r["online"]} >= {host, f"{host}-node"}
        assert "replacing its old connection" not in master.log()
    finally:
        node.stop()
        worker.stop()
