"""Address lists (standby masters): `--master a:6000,b:6000` for every agent and the dashboard,
tried in turn. A port where nothing listens (a standby holds none open) is skipped; the agent
and the dashboard end up on the master that accepts, and `status`, the console and /metrics
say which master that is and its role."""

from __future__ import annotations

import argparse

import gevent
import pytest

from dashboard.app import create_app
from dashboard.rpc import MasterClient
from dashboard.runtime import Dashboard, Settings
from dashboard.testclient import WsgiClient
from farmhand.agent.runtime import AgentRuntime
from farmhand.options import MasterAddress, MasterList, add_agent_flags
from tests.faults.harness import free_port
from tests.support import ConsoleClient, MasterProcess, RpcClient

pytestmark = pytest.mark.timeout(60)


def test_the_master_flag_takes_a_list() -> None:
    parser = argparse.ArgumentParser()
    add_agent_flags(parser)
    masters = parser.parse_args(["--master", "a:6000, tls://b:6443"]).master
    assert masters == MasterList((MasterAddress("a", 6000), MasterAddress("b", 6443, tls=True)))
    assert str(masters) == "a:6000,tls://b:6443"  # what node.py hands its agents
    assert parser.parse_args(["--master", "c"]).master == MasterList((MasterAddress("c", 6000),))
    with pytest.raises(SystemExit):
        parser.parse_args(["--master", "a:6000,b:0"])


def standby_and(master: MasterProcess) -> MasterList:
    """A list whose first master holds no port open (like a standby), then the real one."""
    return MasterList(
        (MasterAddress("127.0.0.1", free_port()), MasterAddress("127.0.0.1", master.port))
    )


def test_an_agent_given_a_list_connects_to_the_master_that_accepts(
    master: MasterProcess, api: RpcClient
) -> None:
    masters = standby_and(master)
    runtime = AgentRuntime(master=masters, name="listed", role="worker")
    loop = gevent.spawn(runtime.run)
    try:
        assert runtime.connected.wait(20)
        assert runtime.master == masters[1]
        rows = api.call("clients.list", select="listed")["clients"]
        assert [row["online"] for row in rows] == [True]
    finally:
        runtime.stop()
        loop.join(10)


def test_the_dashboard_given_a_list_shows_the_master_it_reaches(master: MasterProcess) -> None:
    masters = standby_and(master)
    client = MasterClient(masters)
    dash = Dashboard(Settings(master=masters), master=client)
    dash.start()
    try:
        assert client.wait_connected(20), client.last_error
        assert client.address == masters[1]
        status = client.call("status")
        assert status["master"]["role"] == "active"
        assert status["master"]["standby_capable"] is False  # SQLite: the only master
        metrics = WsgiClient(create_app(dash)).get("/metrics").text
        assert "farmhand_master_active 1" in metrics
        assert f'farmhand_master_info{{role="active",holder="",listen="{master.address}"}} 1' in (
            metrics
        )
    finally:
        dash.stop()
    with ConsoleClient(master.port) as console:
        assert "role:        active (the only master: SQLite)" in console.command("status")
