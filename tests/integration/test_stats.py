"""sessions.list and stats.get against a real master: a pour through a fake Kegboard agent is
counted at once, and after a restart (the stored pours are replayed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.test_devices import Board, setup_tap, wait_pours
from tests.support import ConsoleClient, MasterProcess, RpcClient, RpcFailure

pytestmark = pytest.mark.timeout(60)


def test_a_pour_is_in_the_stats_and_a_session_and_survives_a_restart(tmp_path: Path) -> None:
    hub = MasterProcess(tmp_path / "var")
    try:
        with RpcClient(hub.port) as admin:
            setup_tap(admin)
            board = Board(hub.port)
            board.meter(0)
            assert board.token("a11ce0001") == "alice"
            board.meter(545)
            [pour] = wait_pours(admin, 1)
            board.close()
            system = admin.call("stats.get")
            assert system["total_pours"] == 1
            assert system["volume_by_drinker"] == {"alice": pour["volume_ml"]}
            assert admin.call("stats.get", username="alice")["sessions"] == 1
            keg_id = admin.call("kegs.list")["kegs"][0]["id"]
            assert admin.call("stats.get", keg=keg_id)["largest_pour_ml"] == pour["volume_ml"]
            [session] = admin.call("sessions.list")["sessions"]
            assert session["drinkers"] == ["alice"] and session["pours"] == 1
            with ConsoleClient(hub.port) as console:
                assert "in 1 pour, 1 session" in console.command("stats user=alice")
                assert "alice" in console.command("sessions")
                assert "usage: stats" in console.command("stats keg=x")
            with pytest.raises(RpcFailure) as missing:
                admin.call("stats.get", username="nobody")
            assert missing.value.code == -32004
        assert hub.stop() == 0
        hub = MasterProcess(tmp_path / "var")
        with RpcClient(hub.port) as admin:
            assert admin.call("stats.get")["total_pours"] == 1
            assert admin.call("sessions.list")["sessions"] == [session]
    finally:
        hub.stop()
