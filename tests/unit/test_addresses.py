"""Master addresses (`[tls://]HOST:PORT`), --ca, and when a key would travel in plaintext."""

from __future__ import annotations

import argparse
import socket
from pathlib import Path

import pytest

from farmhand.master.config import MasterConfig
from farmhand.master.exposure import exposure_warnings
from farmhand.options import MasterAddress, ca_argument, is_loopback, key_in_clear, parse_address


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("farm:6000", MasterAddress("farm", 6000)),
        ("farm", MasterAddress("farm", 6000)),
        ("tls://farm:6443", MasterAddress("farm", 6443, tls=True)),
        ("TLS://farm", MasterAddress("farm", 6000, tls=True)),
        ("[::1]:7000", MasterAddress("::1", 7000)),
        ("tls://[fd00::5]:6443", MasterAddress("fd00::5", 6443, tls=True)),
        (" 10.0.0.5:6001 ", MasterAddress("10.0.0.5", 6001)),
    ],
)
def test_addresses_parse_into_a_typed_value(text: str, expected: MasterAddress) -> None:
    assert parse_address(text) == expected
    assert parse_address(str(expected)) == expected  # str() is a valid --master


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("tls://", "empty"),
        ("farm:0", "bad port"),
        ("farm:http", "bad port"),
        ("http://farm:6000", "unknown scheme 'http'"),
        (":6000", "no host"),
    ],
)
def test_bad_addresses_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_address(text)


def test_the_ca_flag_wants_a_pem_file_that_loads(tmp_path: Path) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="does not exist"):
        ca_argument(str(tmp_path / "missing.pem"))
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("hello\n")
    with pytest.raises(argparse.ArgumentTypeError, match=r"garbage\.pem"):
        ca_argument(str(garbage))


class Peer:
    """Stands in for a socket connected to another machine (tests only reach 127.0.0.1)."""

    def __init__(self, host: str) -> None:
        self.host = host

    def getpeername(self) -> tuple[str, int]:
        return (self.host, 6000)


def test_a_key_is_in_clear_only_over_plain_tcp_to_another_machine() -> None:
    plain, tls = MasterAddress("farm", 6000), MasterAddress("farm", 6443, tls=True)
    assert key_in_clear(plain, Peer("10.0.0.5"))
    assert not key_in_clear(tls, Peer("10.0.0.5"))
    assert not key_in_clear(plain, Peer("::ffff:127.0.0.1"))
    with (
        socket.create_server(("127.0.0.1", 0)) as server,
        socket.create_connection(server.getsockname()) as local,
    ):
        assert not key_in_clear(plain, local)
    assert is_loopback("::1") and is_loopback("127.4.5.6") and not is_loopback("farm")


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1"])
def test_loopback_binds_expose_nothing(host: str) -> None:
    assert exposure_warnings(MasterConfig(host=host)) == []


def test_a_non_loopback_bind_warns_until_tls_and_keys_are_on() -> None:
    bare = exposure_warnings(MasterConfig(host="0.0.0.0"))
    assert len(bare) == 2 and "without TLS" in bare[0] and "admin" in bare[1]
    with_tls = MasterConfig(host="10.0.0.5", tls_port=6443, tls_cert=Path("c"), tls_key=Path("k"))
    assert ["--require-key" in w for w in exposure_warnings(with_tls)] == [True]
    guarded = MasterConfig(host="::", require_key=True)
    assert ["without TLS" in w for w in exposure_warnings(guarded)] == [True]
    assert exposure_warnings(MasterConfig(host="farm.lan", require_key=True, tls_port=1)) == []
