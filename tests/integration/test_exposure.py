"""A key never crosses a network in plaintext when the master offers TLS (issue 9): a master run
in this process, called through its Api as a peer on another machine would be (tests reach the
master only over 127.0.0.1, so the peer's address is set on the session)."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from farmhand.master.app import Master
from farmhand.master.config import MasterConfig
from farmhand.master.console.shell import ConsoleConnection
from farmhand.master.session import Session
from protocol.errors import RpcError
from tests.tlscerts import FarmCa, make_farm_ca

REMOTE = "192.0.2.7"  # TEST-NET-1: another machine
HELLO = {"role": "worker", "name": "w1", "proto": 1}


@pytest.fixture(scope="module")
def farm_ca(tmp_path_factory: pytest.TempPathFactory) -> FarmCa:
    return make_farm_ca(tmp_path_factory.mktemp("ca"), "localhost")


def start_master(tmp_path: Path, **settings: object) -> Master:
    config = MasterConfig(port=0, data_dir=tmp_path / "var", **settings)  # type: ignore[arg-type]
    master = Master(config)
    master.start()
    return master


@pytest.fixture
def tls_master(tmp_path: Path, farm_ca: FarmCa) -> Iterator[Master]:
    master = start_master(
        tmp_path, tls_port=0, tls_cert=farm_ca.cert, tls_key=farm_ca.key, require_key=True
    )
    yield master
    master.stop()


def session(host: str, *, tls: bool = False, dialect: str = "rpc") -> Session:
    return Session(peer_host=host, peer_port=40000, dialect=dialect, trusted=False, tls=tls)


def worker_key(master: Master) -> str:
    return master.services.keys.create("worker", "w1", master.services.clock.wall())[1]


def test_a_key_sent_in_plaintext_from_another_machine_is_refused(
    tls_master: Master, caplog: pytest.LogCaptureFixture
) -> None:
    key = worker_key(tls_master)
    peer = session(REMOTE)
    with caplog.at_level(logging.WARNING), pytest.raises(RpcError) as refused:
        tls_master.api.call(peer, "hello", {**HELLO, "key": key})
    assert refused.value.code == -32001
    assert refused.value.reason == "tls_required"
    tls_port = tls_master.services.tls_address[1]  # type: ignore[index]
    assert f"tls://HOST:{tls_port}" in refused.value.message
    assert not peer.authorized and peer.client is None
    assert tls_master.services.registry.get("w1") is None  # nothing registered
    # The master names the exposed key, so the operator can revoke it.
    key_id = key.split("_")[1]
    exposed = [r.message for r in caplog.records if "plaintext" in r.message]
    assert len(exposed) == 1 and key_id in exposed[0] and REMOTE in exposed[0]
    # A retrying agent does not flood the log: one warning a minute per host.
    with caplog.at_level(logging.WARNING), pytest.raises(RpcError):
        tls_master.api.call(session(REMOTE), "hello", {**HELLO, "key": key})
    assert len([r for r in caplog.records if "plaintext" in r.message]) == 1


def test_a_console_login_in_plaintext_from_another_machine_is_refused(tls_master: Master) -> None:
    services = tls_master.services
    admin = services.keys.create("api", "ops", services.clock.wall())[1]
    left, right = socket.socketpair()
    with left, right:
        console = ConsoleConnection(
            left, session(REMOTE, dialect="console"), services, tls_master.api
        )
        answer = console.execute(f"login {admin}")
        assert answer.startswith("error: keys are accepted from other machines only over TLS")
        assert not console.session.authorized
        assert console.execute("ping").startswith("error: log in first")


def test_the_same_key_over_tls_or_from_loopback_is_accepted(tls_master: Master) -> None:
    key = worker_key(tls_master)
    over_tls = session(REMOTE, tls=True)
    assert tls_master.api.call(over_tls, "hello", {**HELLO, "key": key})["name"] == "w1"
    assert over_tls.authorized
    local = session("127.0.0.1")
    assert tls_master.api.call(local, "hello", {**HELLO, "key": key})


def test_without_a_tls_port_there_is_nothing_better_to_offer(tmp_path: Path) -> None:
    master = start_master(tmp_path, require_key=True)
    try:
        key = worker_key(master)
        assert master.api.call(session(REMOTE), "hello", {**HELLO, "key": key})["name"] == "w1"
    finally:
        master.stop()


def test_status_lists_the_exposure_warnings(tls_master: Master) -> None:
    admin = session("127.0.0.1", tls=True)
    admin.trusted = admin.authorized = True
    status = tls_master.api.call(admin, "status", {})
    assert status["warnings"] == []
    tls_address = tls_master.services.tls_address
    assert tls_address is not None
    assert status["listen_tls"] == f"127.0.0.1:{tls_address[1]}"
    # The same master as if it had been started with --host 0.0.0.0 and neither TLS nor a key.
    config = tls_master.services.config
    tls_master.services.config = replace(config, host="0.0.0.0", tls_port=None, require_key=False)
    left, right = socket.socketpair()
    try:
        warnings = tls_master.api.call(admin, "status", {})["warnings"]
        console = ConsoleConnection(left, admin, tls_master.services, tls_master.api)
        shown = console.execute("status")
    finally:
        tls_master.services.config = config
        left.close()
        right.close()
    assert shown.count("WARNING:") == 2 and "without TLS" in shown, shown
    assert len(warnings) == 2
    assert "without TLS" in warnings[0] and "--require-key" in warnings[1]
