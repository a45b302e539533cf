"""A throwaway PostgreSQL server for tests and benches: initdb in a temp dir, start, stop, remove.

Runs as the `postgres` user when we are root (initdb and postgres refuse to run as root). The
driver (psycopg 3, the `postgres` extra) is imported when a server starts, so a checkout without
it still runs every SQLite test.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

START_TIMEOUT_S = 30.0
_SERVER_USER = "postgres"
_TEST_DBNAME = "farmhand_test"


def find_pg_bin_dir() -> Path:
    """The directory holding initdb, pg_ctl and postgres: PATH first, then the newest Debian one."""
    on_path = [shutil.which(name) for name in ("initdb", "pg_ctl", "postgres")]
    if all(on_path):
        return Path(str(on_path[0])).parent
    candidates = [Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin")]
    candidates = [p for p in candidates if (p / "initdb").exists() and (p / "pg_ctl").exists()]

    def major(p: Path) -> float:
        try:
            return float(p.parent.name)
        except ValueError:
            return 0.0

    if not candidates:
        raise RuntimeError(
            "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found on PATH or in "
            "/usr/lib/postgresql/*/bin: install the Debian package `postgresql` "
            "(apt-get install postgresql) to run the PostgreSQL tests"
        )
    return max(candidates, key=major)


def _connect(url: str, **params: Any) -> psycopg.Connection[Any]:
    import psycopg

    return psycopg.connect(url, **params)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    """`with PostgresServer() as pg: pg.url` → a running server with database farmhand_test."""

    def __init__(self, dbname: str = _TEST_DBNAME) -> None:
        self.dbname = dbname
        self.bin_dir = find_pg_bin_dir()
        self.port = 0
        self.tmp: Path | None = None
        self._as_root = os.geteuid() == 0
        self._options = ""

    @property
    def url(self) -> str:
        return f"postgresql://{_SERVER_USER}@127.0.0.1:{self.port}/{self.dbname}"

    def admin_url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{_SERVER_USER}@127.0.0.1:{self.port}/{dbname}"

    def _run(self, *argv: str) -> None:
        cmd = [str(self.bin_dir / argv[0]), *argv[1:]]
        if self._as_root:
            cmd = ["runuser", "-u", _SERVER_USER, "--", *cmd]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=START_TIMEOUT_S)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr}")

    def start(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="farmhand-pg-"))
        if self._as_root:
            shutil.chown(self.tmp, user=_SERVER_USER, group=_SERVER_USER)
        data = self.tmp / "data"
        self._run(
            "initdb", "-D", str(data), "-U", _SERVER_USER, "--auth=trust", "-E", "UTF8",
            "--no-sync", "--locale=C",
        )  # fmt: skip
        self.port = _free_port()
        self._options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} "
            f"-c unix_socket_directories={self.tmp} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self.resume()
        conn = _connect(self.admin_url())
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{self.dbname}"')
        finally:
            conn.close()

    def halt(self) -> None:
        """Stop the server as an operator would (`pg_ctl stop -m fast`), keeping its data."""
        assert self.tmp is not None, "not started"
        self._run("pg_ctl", "stop", "-D", str(self.tmp / "data"), "-m", "fast", "-w")

    def resume(self) -> None:
        """Start the (initialised) server again on the same port; return once it accepts."""
        assert self.tmp is not None, "not started"
        data, log = self.tmp / "data", self.tmp / "server.log"
        self._run("pg_ctl", "start", "-D", str(data), "-l", str(log), "-o", self._options, "-w")
        self._wait_ready()

    def restart(self) -> None:
        """`pg_ctl restart -m fast`: every connection is cut, the server comes straight back."""
        assert self.tmp is not None, "not started"
        data, log = self.tmp / "data", self.tmp / "server.log"
        self._run(
            "pg_ctl", "restart", "-D", str(data), "-m", "fast", "-l", str(log),
            "-o", self._options, "-w",
        )  # fmt: skip
        self._wait_ready()

    @property
    def running(self) -> bool:
        return self.tmp is not None and (self.tmp / "data" / "postmaster.pid").exists()

    def _wait_ready(self) -> None:
        import psycopg

        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                _connect(self.admin_url(), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"PostgreSQL did not accept connections on port {self.port} within "
                        f"{START_TIMEOUT_S:.0f} s; see {self.tmp}/server.log"
                    ) from None
                time.sleep(0.05)

    def create_database(self, name: str) -> str:
        """Create an empty database on this server and return its URL."""
        conn = _connect(self.admin_url())
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
        return self.admin_url(name)

    def stop(self) -> None:
        if self.tmp is None:
            return
        try:
            if (self.tmp / "data" / "postmaster.pid").exists():
                self._run("pg_ctl", "stop", "-D", str(self.tmp / "data"), "-m", "immediate", "-w")
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None

    def __enter__(self) -> PostgresServer:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
