"""Fixtures for the attack suite: real masters on 127.0.0.1 port 0, open and `--require-key`,
and helpers to read what a master sends before it closes."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import MasterProcess, RpcClient

UNAUTHORIZED = -32001
CONFLICT = -32009


@pytest.fixture
def master(tmp_path: Path) -> Iterator[MasterProcess]:
    """An open master: loopback peers are trusted (docs/security.md)."""
    process = MasterProcess(tmp_path / "var")
    yield process
    process.stop()


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[MasterProcess]:
    """`--require-key`: every peer, loopback too, needs a key."""
    process = MasterProcess(tmp_path / "var", "--require-key")
    yield process
    process.stop()


def admin_key(master: MasterProcess) -> str:
    return (master.data_dir / "admin.key").read_text().strip()


@pytest.fixture
def admin(guarded: MasterProcess) -> Iterator[RpcClient]:
    with RpcClient(guarded.port) as connection:
        connection.call("hello", role="api", name="", proto=1, key=admin_key(guarded))
        yield connection


def read_until_closed(sock: socket.socket, timeout: float = 5.0) -> tuple[bytes, bool]:
    """What the peer sent until it closed, and whether it closed within `timeout`."""
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except TimeoutError:
        return data, False
    except ConnectionResetError:
        pass
    return data, True
