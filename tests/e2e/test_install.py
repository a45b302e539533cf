"""farmhand as pip installs it: `pip install .` (not editable) into a fresh venv, the copy of the
tree deleted, then every program run from an unrelated directory: a master and a worker run a
job, a node starts its worker, the dashboard serves a page and a static file, and every program
prints the version. Needs a package index (or pip's cache) for the dependencies: skipped, with
the reason, only when pip cannot reach one; `-m "not install"` leaves it out."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import textwrap
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from protocol.version import SOFTWARE_VERSION
from tests.support import ROOT, RpcClient, wait_for

pytestmark = pytest.mark.install

# `farmhand`, the operator CLI (README.md), lives in farmhand/cli; its console script is declared
# in pyproject.toml either way, so the checks of it run once that package is in the tree.
HAS_CLI = (ROOT / "farmhand" / "cli" / "main.py").is_file()
PROGRAMS = (
    "farmhand-master",
    "farmhand-worker",
    "farmhand-hwagent",
    "farmhand-node",
    "farmhand-dashboard",
)
# What pip prints when it cannot reach an index: the only reason to skip rather than fail.
NO_INDEX = re.compile(
    r"NewConnectionError|Failed to establish a new connection|Temporary failure in name "
    r"resolution|Name or service not known|Network is unreachable|ConnectTimeoutError|"
    r"ProxyError|No matching distribution found for (setuptools|gevent|peewee|bottle|orjson)"
)
# Not part of a clean clone: the developer's venv, caches, build output, run-time data.
NOT_IN_A_CLONE = shutil.ignore_patterns(
    ".git", ".venv", "var", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis"
)
# A stdlib-only JSON-RPC client for the fresh venv's python, for when `farmhand submit` (the CLI,
# farmhand/cli) is not installed: submit a job, wait until it completes, print its status.
SUBMIT_AND_WAIT = textwrap.dedent(
    """
    import json, socket, sys, time
    sock = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 10)
    lines = sock.makefile("rwb")
    def call(ident, method, **params):
        request = {"jsonrpc": "2.0", "id": ident, "method": method, "params": params}
        lines.write(json.dumps(request).encode() + b"\\n")
        lines.flush()
        while True:
            reply = json.loads(lines.readline())
            if reply.get("id") == ident:
                return reply["result"]
    job = call(1, "jobs.submit", name="installed", argv=sys.argv[2:])["job_id"]
    for ident in range(2, 600):
        status = call(ident, "jobs.get", job_id=job)["status"]
        if status in ("completed", "failed", "canceled"):
            break
        time.sleep(0.1)
    print(job, status)
    """
)


class Running:
    """An installed program run from `cwd`; its output goes to a log file."""

    def __init__(self, argv: list[str], cwd: Path, log: Path) -> None:
        self.log_path = log
        self._log = log.open("ab")
        self.proc = subprocess.Popen(
            argv, cwd=cwd, stdout=subprocess.PIPE, stderr=self._log, env=clean_env()
        )

    def first_line(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().decode()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc.stdout:
            self.proc.stdout.close()
        self._log.close()


def clean_env() -> dict[str, str]:
    """The environment without anything that would find the checkout instead of the install."""
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture(scope="module")
def venv_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with farmhand installed from a copy of the tree, the copy deleted."""
    base = tmp_path_factory.mktemp("install")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    source = base / "farmhand-src"
    shutil.copytree(ROOT, source, ignore=NOT_IN_A_CLONE)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(source)]
    result = subprocess.run(pip, capture_output=True, text=True, timeout=540, env=clean_env())
    if result.returncode != 0 and NO_INDEX.search(result.stdout + result.stderr):
        pytest.skip(f"pip cannot reach a package index: {result.stderr.strip()[-300:]}")
    assert result.returncode == 0, result.stdout + result.stderr
    shutil.rmtree(source)
    return venv / "bin"


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    """An unrelated directory to run the programs from."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    return folder


@pytest.fixture
def master(venv_bin: Path, elsewhere: Path) -> Iterator[str]:
    """An installed `farmhand-master` on port 0: its address."""
    program = Running(
        [str(venv_bin / "farmhand-master"), "--port", "0", "--data-dir", "var"],
        elsewhere,
        elsewhere / "master.log",
    )
    try:
        line = program.first_line()
        match = re.search(r"listening on (\S+:\d+)", line)
        assert match, f"master did not start: {line!r}\n{program.log()}"
        yield match.group(1)
    finally:
        program.stop()


def is_online(address: str, name: str) -> bool:
    with RpcClient(int(address.rsplit(":", 1)[1])) as client:
        rows = client.call("clients.list", select=name)["clients"]
    return bool(rows and rows[0]["online"])


@pytest.mark.timeout(600)
def test_the_package_holds_no_checkout_and_every_program_prints_the_version(
    venv_bin: Path, elsewhere: Path
) -> None:
    python = str(venv_bin / "python")
    where = subprocess.run(
        [python, "-c", "import farmhand, dashboard, models, protocol; print(farmhand.__file__)"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        env=clean_env(),
        check=True,
    ).stdout
    assert "site-packages" in where and str(ROOT) not in where
    programs = [*PROGRAMS, *(["farmhand"] if HAS_CLI else [])]
    for program in programs:
        result = subprocess.run(
            [str(venv_bin / program), "--version"],
            cwd=elsewhere,
            capture_output=True,
            text=True,
            timeout=30,
            env=clean_env(),
        )
        assert result.returncode == 0, (program, result.stderr)
        assert result.stdout.strip() == f"{program} {SOFTWARE_VERSION}", program


@pytest.mark.timeout(600)
def test_an_installed_master_and_worker_run_a_job(
    venv_bin: Path, elsewhere: Path, master: str
) -> None:
    worker = Running(
        [str(venv_bin / "farmhand-worker"), "--master", master, "--name", "installed-w1"],
        elsewhere,
        elsewhere / "worker.log",
    )
    try:
        wait_for(lambda: is_online(master, "installed-w1"), what="the installed worker online")
        task = [str(venv_bin / "python"), "-c", "print('rendered')"]
        port = master.rsplit(":", 1)[1]
        result = subprocess.run(
            [str(venv_bin / "python"), "-c", SUBMIT_AND_WAIT, port, *task],
            cwd=elsewhere,
            capture_output=True,
            text=True,
            timeout=90,
            env=clean_env(),
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.split()[1] == "completed", result.stdout + worker.log()
        if HAS_CLI:
            cli = [str(venv_bin / "farmhand"), "--master", master]
            submitted = subprocess.run(
                [*cli, "submit", "installed-cli", "--wait", "--", *task],
                cwd=elsewhere,
                capture_output=True,
                text=True,
                timeout=90,
                env=clean_env(),
            )
            assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    finally:
        worker.stop()


@pytest.mark.timeout(600)
def test_an_installed_node_starts_its_worker(venv_bin: Path, elsewhere: Path, master: str) -> None:
    (elsewhere / "agents.toml").write_text(
        '[[agent]]\nname = "node-w1"\nprogram = "worker"\nflags = { work_dir = "work" }\n'
    )
    node = Running(
        [str(venv_bin / "farmhand-node"), "--master", master, "--name", "installed-node"],
        elsewhere,
        elsewhere / "node.log",
    )
    try:
        wait_for(
            lambda: is_online(master, "node-w1"),
            timeout=20,
            what="the node's worker online",
        )
    finally:
        node.stop()


@pytest.mark.timeout(600)
def test_the_installed_dashboard_serves_a_page_and_a_static_file(
    venv_bin: Path, elsewhere: Path, master: str
) -> None:
    dashboard = Running(
        [str(venv_bin / "farmhand-dashboard"), "--port", "0", "--master", master],
        elsewhere,
        elsewhere / "dashboard.log",
    )
    try:
        line = dashboard.first_line()
        match = re.search(r"(http://\S+/)", line)
        assert match, f"dashboard did not start: {line!r}\n{dashboard.log()}"
        url = match.group(1)
        with urllib.request.urlopen(url + "login", timeout=10) as page:
            assert page.status == 200 and b"<form" in page.read()
        with urllib.request.urlopen(url + "static/app.css", timeout=10) as static:
            assert static.read() == (ROOT / "dashboard" / "static" / "app.css").read_bytes()
        with urllib.request.urlopen(url + "healthz", timeout=10) as health:
            assert json.loads(health.read())["ok"] is True
        assert "not monkey-patched" not in dashboard.log()
    finally:
        dashboard.stop()


@pytest.mark.parametrize(
    ("argv", "prog"),
    [
        (["master.py"], "master.py"),
        (["worker.py"], "worker.py"),
        (["hwagent.py"], "hwagent.py"),
        (["node.py"], "node.py"),
        (["-m", "dashboard"], "python -m dashboard"),
    ],
)
def test_every_program_of_the_checkout_prints_the_version(argv: list[str], prog: str) -> None:
    if argv[0].endswith(".py"):
        argv = [str(ROOT / argv[0])]
    result = subprocess.run(
        [sys.executable, *argv, "--version"], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{prog} {SOFTWARE_VERSION}"
