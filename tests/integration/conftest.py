"""Fixtures for integration tests: a real master process on 127.0.0.1, port 0."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import MasterProcess, Program


@pytest.fixture
def worker(tmp_path: Path, master: MasterProcess) -> Iterator[Program]:
    """A real worker.py named w1 on `master`."""
    program = Program(
        "worker.py",
        *("--master", master.address, "--name", "w1", "--work-dir", str(tmp_path / "work")),
        log_path=tmp_path / "worker.log",
    )
    yield program
    program.stop()
