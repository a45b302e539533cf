"""Clients against a real master (docs/protocol.md, Sessions): hello, re-hello, replacement,
heartbeats and their timeout, the selector grammar, enable/disable/forget, and persistence
across a clean restart and a kill -9."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.support import MasterProcess, RpcClient, RpcFailure, agent, wait_for

CLIENT_FIELDS = {
    "name",
    "role",
    "host",
    "enabled",
    "online",
    "status",
    "last_seen",
    "tags",
    "slots",
    "running",
}


def listing(port: int, select: str = "all") -> dict[str, dict[str, Any]]:
    with RpcClient(port) as client:
        rows = client.call("clients.list", select=select)["clients"]
    return {row["name"]: row for row in rows}


def names(port: int, select: str) -> list[str]:
    return sorted(listing(port, select))


def wait_offline(port: int, name: str) -> None:
    wait_for(lambda: not listing(port)[name]["online"], timeout=5, what=f"{name} offline")


@contextmanager
def running_master(data_dir: Path, *args: str) -> Iterator[MasterProcess]:
    process = MasterProcess(data_dir, "--heartbeat-s", "0.5", *args)
    try:
        yield process
    finally:
        process.stop()


def saver_lines(master: MasterProcess) -> int:
    return master.log().count("farmhand.master.saver: saved")


def wait_for_write_behind(master: MasterProcess) -> None:
    """Return once every change made before the call is in the database.

    A save logged after the call may come from a flush already under way, so wait for one more
    flush after it. A probe client gives both flushes something to write (coming online, then
    going offline): operator writes such as clients.disable are saved before they are answered,
    so they leave nothing behind for the saver to log.
    """
    before = saver_lines(master)
    with agent(master.port, "write-behind-probe"):
        after = wait_for(lambda: saver_lines(master) > before and saver_lines(master), timeout=5)
    wait_for(lambda: saver_lines(master) > after, timeout=5, what="a second flush")


# -- hello -------------------------------------------------------------------------------------


def test_a_new_name_creates_an_enabled_client(master: MasterProcess) -> None:
    with RpcClient(master.port) as connection:
        result = connection.call(
            "hello", role="worker", name="w1", proto=1, info={"tags": ["gpu"], "slots": 4}
        )
        assert isinstance(result["client_id"], int)
        assert result["name"] == "w1"
        assert result["enabled"] is True
        assert result["heartbeat_s"] == 0.5
        row = listing(master.port)["w1"]
        assert set(row) >= CLIENT_FIELDS
        assert row["role"] == "worker"
        assert row["online"] is True
        assert row["status"] == "idle"
        assert row["tags"] == ["gpu"]
        assert row["slots"] == 4
        assert row["running"] == []
        assert row["host"]
        assert row["last_seen"]


def test_new_names_get_distinct_ids(master: MasterProcess) -> None:
    with RpcClient(master.port) as a, RpcClient(master.port) as b:
        first = a.call("hello", role="worker", name="w1", proto=1)["client_id"]
        second = b.call("hello", role="hardware", name="keg1", proto=1)["client_id"]
        assert first != second


def test_re_hello_of_a_known_name_keeps_its_id_and_enabled_flag(master: MasterProcess) -> None:
    with RpcClient(master.port) as first:
        client_id = first.call("hello", role="worker", name="w1", proto=1)["client_id"]
    wait_offline(master.port, "w1")
    with RpcClient(master.port) as admin:
        assert admin.call("clients.disable", select="w1") == {"matched": ["w1"], "changed": ["w1"]}
    with RpcClient(master.port) as second:
        result = second.call("hello", role="worker", name="w1", proto=1)
        assert result["client_id"] == client_id
        assert result["enabled"] is False
        row = listing(master.port)["w1"]
        assert row["online"] is True
        assert row["enabled"] is False


def test_a_second_connection_under_an_online_name_replaces_the_first(
    master: MasterProcess,
) -> None:
    with RpcClient(master.port) as watcher:
        watcher.call("subscribe", topics=["clients"])
        first = agent(master.port, "w1")
        client_id = listing(master.port)["w1"]["id"]
        with agent(master.port, "w1") as second:
            assert first.is_closed(), "the master must close the replaced connection"
            first.close()
            assert second.call("ping") == "pong"
            row = listing(master.port)["w1"]
            assert row["online"] is True
            assert row["id"] == client_id
            # The replaced connection's end is not the client's: no offline event for it.
            assert watcher.call("ping") == "pong"
            changes = [event["params"]["data"]["change"] for event in watcher.events]
            assert changes.count("online") == 2
            assert "offline" not in changes


def test_a_connection_cannot_say_hello_under_a_second_name(master: MasterProcess) -> None:
    with agent(master.port, "w1") as connection:
        reply = connection.request("hello", role="worker", name="w2", proto=1)
        assert reply["error"]["code"] == -32009
        assert "w2" not in listing(master.port)


# -- heartbeats ------------------------------------------------------------------------------


def test_a_silent_agent_goes_offline_and_its_connection_is_closed(master: MasterProcess) -> None:
    with RpcClient(master.port) as watcher, agent(master.port, "quiet") as quiet:
        watcher.call("subscribe", topics=["clients"])
        assert quiet.is_closed(timeout=5), "a silent agent must be disconnected"
        event = watcher.wait_event(lambda data: data["data"]["change"] == "offline")
        assert event["data"]["client"]["name"] == "quiet"
        assert "heartbeat" in event["data"]["reason"]
        row = listing(master.port)["quiet"]
        assert row["online"] is False
        assert row["status"] == "offline"


def test_an_agent_that_sends_heartbeats_stays_online(master: MasterProcess) -> None:
    with agent(master.port, "lively") as lively:
        # Twice the 1.5 s timeout, beating every 0.2 s like an agent would.
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            lively.notify("heartbeat")
            time.sleep(0.2)
        assert listing(master.port)["lively"]["online"] is True
        assert lively.call("ping") == "pong"


def test_heartbeat_with_running_attempts_makes_the_client_busy(master: MasterProcess) -> None:
    with agent(master.port, "w1") as worker:
        worker.notify("heartbeat", running=["a1", "a2"])
        wait_for(lambda: listing(master.port)["w1"]["status"] == "busy", what="busy")
        assert listing(master.port)["w1"]["running"] == ["a1", "a2"]
        assert names(master.port, "busy") == ["w1"]
        worker.notify("heartbeat", running=[])
        wait_for(lambda: listing(master.port)["w1"]["status"] == "idle", what="idle")
        assert names(master.port, "idle") == ["w1"]


def test_heartbeat_before_hello_is_refused(master: MasterProcess) -> None:
    with RpcClient(master.port) as connection:
        reply = connection.request("heartbeat")
        assert reply["error"]["code"] == -32009
        assert connection.call("ping") == "pong"


# -- clients.list and selectors --------------------------------------------------------------


@pytest.fixture
def farm(tmp_path: Path) -> Iterator[MasterProcess]:
    """render-01 (gpu), render-02 (cpu), keg1 (hardware) online; render-03 offline.

    The default 5 s heartbeat keeps the three online for the test without beating.
    """
    master = MasterProcess(tmp_path / "var")
    connections = [
        agent(master.port, "render-01", info={"tags": ["gpu", "blender"]}),
        agent(master.port, "render-02", info={"tags": ["cpu"]}),
        agent(master.port, "keg1", role="hardware"),
    ]
    agent(master.port, "render-03", info={"tags": ["gpu"]}).close()
    wait_offline(master.port, "render-03")
    yield master
    for connection in connections:
        connection.close()
    master.stop()


@pytest.mark.parametrize(
    ("select", "expected"),
    [
        ("all", ["keg1", "render-01", "render-02", "render-03"]),
        ("role=worker", ["render-01", "render-02", "render-03"]),
        ("role=hardware", ["keg1"]),
        ("tag=gpu", ["render-01", "render-03"]),
        ("tag=gpu online", ["render-01"]),
        ("online", ["keg1", "render-01", "render-02"]),
        ("offline", ["render-03"]),
        ("render-0*", ["render-01", "render-02", "render-03"]),
        ("render-0[12]", ["render-01", "render-02"]),
        ("keg1 render-03", ["keg1", "render-03"]),
        ("render-* offline", ["render-03"]),
        ("role=worker tag=cpu", ["render-02"]),
        # These agents' info carries no host, so their host is the peer address.
        ("host=127.0.0.1", ["keg1", "render-01", "render-02", "render-03"]),
        ("host=127.*", ["keg1", "render-01", "render-02", "render-03"]),
        ("host=farm-*", []),
        ("enabled", ["keg1", "render-01", "render-02", "render-03"]),
        ("disabled", []),
        ("nobody*", []),
        ("", []),
        ("   ", []),
    ],
)
def test_clients_list_select_grammar(farm: MasterProcess, select: str, expected: list[str]) -> None:
    assert names(farm.port, select) == expected


def test_clients_list_default_is_all_sorted_by_name(farm: MasterProcess) -> None:
    with RpcClient(farm.port) as client:
        rows = client.call("clients.list")["clients"]
    assert [row["name"] for row in rows] == ["keg1", "render-01", "render-02", "render-03"]


@pytest.mark.parametrize("select", ["colour=red", "role=", "tag="])
def test_a_bad_selector_is_32602(farm: MasterProcess, select: str) -> None:
    with RpcClient(farm.port) as client:
        reply = client.request("clients.list", select=select)
        assert reply["error"]["code"] == -32602
        assert reply["error"]["data"]["reason"] == "bad_selector"
        assert client.call("ping") == "pong"


def test_enable_and_disable_return_matched_and_changed(farm: MasterProcess) -> None:
    with RpcClient(farm.port) as admin:
        assert admin.call("clients.disable", select="tag=gpu") == {
            "matched": ["render-01", "render-03"],
            "changed": ["render-01", "render-03"],
        }
        assert admin.call("clients.disable", select="role=worker") == {
            "matched": ["render-01", "render-02", "render-03"],
            "changed": ["render-02"],
        }
        assert names(farm.port, "disabled") == ["render-01", "render-02", "render-03"]
        assert admin.call("clients.enable", select="render-01") == {
            "matched": ["render-01"],
            "changed": ["render-01"],
        }
        assert admin.call("clients.enable", select="render-01") == {
            "matched": ["render-01"],
            "changed": [],
        }
        assert admin.call("clients.enable", select="") == {"matched": [], "changed": []}
        assert names(farm.port, "enabled") == ["keg1", "render-01"]


def test_enable_and_disable_require_a_selector(farm: MasterProcess) -> None:
    with RpcClient(farm.port) as admin:
        for method in ("clients.enable", "clients.disable"):
            reply = admin.request(method)
            assert reply["error"]["code"] == -32602
            assert reply["error"]["data"]["reason"] == "missing_param"
        assert names(farm.port, "enabled") == sorted(listing(farm.port))


# -- forget ----------------------------------------------------------------------------------


def test_forget_an_online_client_is_a_conflict(farm: MasterProcess) -> None:
    with RpcClient(farm.port) as admin:
        with pytest.raises(RpcFailure) as failure:
            admin.call("clients.forget", name="render-01")
        assert failure.value.code == -32009
        assert "render-01" in listing(farm.port)


def test_forget_an_unknown_client_is_not_found(farm: MasterProcess) -> None:
    with RpcClient(farm.port) as admin:
        with pytest.raises(RpcFailure) as failure:
            admin.call("clients.forget", name="ghost")
        assert failure.value.code == -32004


def test_forget_an_offline_client_removes_it_also_after_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    with running_master(data_dir) as master:
        agent(master.port, "keep").close()
        agent(master.port, "drop").close()
        wait_offline(master.port, "drop")
        with RpcClient(master.port) as admin:
            assert admin.call("clients.forget", name="drop") == {}
        assert sorted(listing(master.port)) == ["keep"]
    with running_master(data_dir) as master:
        assert sorted(listing(master.port)) == ["keep"]


# -- persistence -----------------------------------------------------------------------------


def _make_clients(master: MasterProcess) -> dict[str, int]:
    """w1 enabled and w2 disabled, both offline; returns their ids."""
    ids = {}
    for name in ("w1", "w2"):
        with agent(master.port, name, info={"tags": ["t-" + name], "slots": 3}):
            ids[name] = listing(master.port)[name]["id"]
        wait_offline(master.port, name)
    with RpcClient(master.port) as admin:
        admin.call("clients.disable", select="w2")
    return ids


def _assert_restored(master: MasterProcess, ids: dict[str, int]) -> None:
    rows = listing(master.port)
    for name, client_id in ids.items():
        assert rows[name]["id"] == client_id
        assert rows[name]["online"] is False
        assert rows[name]["role"] == "worker"
        assert rows[name]["tags"] == ["t-" + name]
        assert rows[name]["slots"] == 3
    assert rows["w1"]["enabled"] is True
    assert rows["w2"]["enabled"] is False
    # A known name re-registering after the restart is still the same client.
    with agent(master.port, "w2") as connection:
        assert listing(master.port)["w2"]["id"] == ids["w2"]
        assert connection.call("ping") == "pong"


def test_a_restart_keeps_clients_ids_and_enabled_flags(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    with running_master(data_dir) as master:
        ids = _make_clients(master)
    assert "stopped" in master.log()
    with running_master(data_dir) as master:
        _assert_restored(master, ids)
        # New names continue after the loaded ids.
        with agent(master.port, "w3"):
            assert listing(master.port)["w3"]["id"] > max(ids.values())


def test_a_kill_9_after_the_write_behind_interval_keeps_clients(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    with running_master(data_dir) as master:
        ids = _make_clients(master)
        wait_for_write_behind(master)
        master.signal(signal.SIGKILL)
        assert master.proc.wait(10) == -signal.SIGKILL
    with running_master(data_dir) as master:
        _assert_restored(master, ids)
