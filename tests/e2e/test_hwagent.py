"""Hardware agents end to end: a real master, real `hwagent.py` processes, devices on ptys.

A Kegboard is farmhand.hardware.kegsim.KegboardSim (KBSP on a pty behind a symlink, so that a
replugged board keeps its path); ID-12 readers and `lines` sensors are bare ptys the test writes
to; the `tail` driver follows real files. Every wait polls (`wait_for`); the only timed
observation is "the relay stays on for a while".
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from farmhand.hardware.kegsim import KegboardSim, PtyDevice
from protocol.id12 import encode_id12
from tests.support import ROOT, MasterProcess, Program, RpcClient, wait_for

pytestmark = pytest.mark.timeout(60)

TOKEN = "deadbeef01"  # alice's card, as the host reports it
TICKS_PER_ML = 2.724


@pytest.fixture
def rpc(master: MasterProcess) -> Iterator[RpcClient]:
    with RpcClient(master.port) as client:
        yield client


@pytest.fixture
def agents() -> Iterator[list[Program]]:
    started: list[Program] = []
    yield started
    for program in started:
        program.kill()


def start_agent(
    agents: list[Program], master: MasterProcess, tmp_path: Path,
    name: str, driver: str, device: Path | str, *extra: str,
) -> Program:  # fmt: skip
    """`hwagent.py` as a user runs it; its log goes to NAME.log in the test's folder."""
    flags = ["--master", master.address, "--name", name, "--driver", driver]
    flags += ["--device", str(device), "--log-level", "debug", *extra]
    program = Program("hwagent.py", *flags, log_path=tmp_path / f"{name}.log")
    agents.append(program)
    return program


def device_state(rpc: RpcClient, agent: str) -> dict[str, Any] | None:
    rows = [row for row in rpc.call("devices.list")["devices"] if row["agent"] == agent]
    return rows[0] if rows else None


def is_device_online(rpc: RpcClient, agent: str) -> bool:
    state = device_state(rpc, agent)
    return bool(state and state["online"])


def pours(rpc: RpcClient) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = rpc.call("pours.list")["pours"]
    return found


@pytest.fixture
def board(tmp_path: Path) -> Iterator[KegboardSim]:
    with KegboardSim(tmp_path / "ttyKEG") as sim:
        yield sim


@pytest.fixture
def tap(rpc: RpcClient) -> None:
    """tap1 on keg1's flow0 and relay0, a 20 l keg, alice with her card."""
    rpc.call("users.create", username="alice")
    rpc.call("tokens.assign", reader="core.rfid", token=TOKEN, username="alice")
    rpc.call("taps.configure", tap="tap1", meter="keg1.flow0", output="keg1.relay0", idle_s=1)
    rpc.call("kegs.start", tap="tap1", beverage="Pale Ale", volume_ml=20000)


def pour_and_wait(rpc: RpcClient, board: KegboardSim, ticks: int) -> dict[str, Any]:
    """Prime the meter (the master's first reading is a baseline), pour, wait for the pour."""
    board.pour(1)
    board.pour(ticks, step=ticks // 5)
    return wait_for(lambda: pours(rpc), what="a pour")[0]  # type: ignore[no-any-return]


# -- the kegboard ------------------------------------------------------------------------------


def test_swipe_pour_and_close(
    master: MasterProcess, rpc: RpcClient, agents: list[Program], tmp_path: Path,
    board: KegboardSim, tap: None,
) -> None:  # fmt: skip
    start_agent(agents, master, tmp_path, "keg1", "kegboard", board.link)
    wait_for(lambda: board.pings >= 1, what="the agent's ping")
    state = wait_for(
        lambda: (s := device_state(rpc, "keg1")) and s["info"].get("serial_number") and s,
        what="hello info",
    )
    assert state["online"] and state["info"]["firmware_version"] == 18
    assert state["info"]["serial_number"] == "kegsim-0001"
    assert state["info"]["driver"] == "kegboard" and state["info"]["url"] == str(board.link)

    board.auth_token(TOKEN)
    wait_for(lambda: board.relay(0), what="relay0 on after the swipe")
    presence = rpc.call("presence.list")["presence"]
    assert [(p["username"], p["reader"]) for p in presence] == [("alice", "core.rfid")]

    pour = pour_and_wait(rpc, board, 545)
    assert (pour["tap"], pour["username"], pour["ticks"]) == ("tap1", "alice", 545)
    assert pour["volume_ml"] == round(545 / TICKS_PER_ML, 1)
    keg = rpc.call("kegs.list", active=True)["kegs"][0]
    assert keg["remaining_ml"] == round(20000 - pour["volume_ml"], 1)
    wait_for(lambda: not board.relay(0), what="relay0 off after the pour")
    assert board.set_outputs[-1] == (0, False)

    board.temperature("thermo-28ff0011aabbccdd", 4.25)
    readings = wait_for(
        lambda: rpc.call("readings.query", sensor="thermo-28ff0011aabbccdd")["readings"],
        what="temperature reading",
    )
    assert (readings[0]["value"], readings[0]["unit"], readings[0]["kind"]) == (
        4.25, "C", "temperature",
    )  # fmt: skip


def test_unknown_token_opens_nothing(
    master: MasterProcess, rpc: RpcClient, agents: list[Program], tmp_path: Path,
    board: KegboardSim, tap: None,
) -> None:  # fmt: skip
    start_agent(agents, master, tmp_path, "keg1", "kegboard", board.link)
    wait_for(lambda: is_device_online(rpc, "keg1"), what="device online")
    board.auth_token("00000000ba")
    unknown = wait_for(lambda: rpc.call("tokens.list")["unknown"], what="unknown token")
    assert [(u["reader"], u["token"], u["agent"]) for u in unknown] == [
        ("core.rfid", "00000000ba", "keg1")
    ]
    assert board.set_outputs == [] and not board.relay(0)
    assert rpc.call("presence.list")["presence"] == []


def test_onewire_presence_of_old_firmware_is_a_captive_token(
    master: MasterProcess, rpc: RpcClient, agents: list[Program], tmp_path: Path,
    board: KegboardSim, tap: None,
) -> None:  # fmt: skip
    rpc.call("tokens.assign", reader="core.onewire", token="0000000012345678", username="alice")
    start_agent(agents, master, tmp_path, "keg1", "kegboard", board.link)
    wait_for(lambda: is_device_online(rpc, "keg1"), what="device online")
    board.onewire_presence(0x12345678)
    wait_for(lambda: board.relay(0), what="relay0 on for the iButton")
    board.onewire_presence(0)  # lifted: the session ends, the valve closes
    wait_for(lambda: not board.relay(0), what="relay0 off when the iButton is lifted")
    assert rpc.call("presence.list")["presence"] == []


def test_relay_is_kept_on_past_the_board_watchdog(
    master: MasterProcess, rpc: RpcClient, agents: list[Program], tmp_path: Path, tap: None,
) -> None:  # fmt: skip
    with KegboardSim(tmp_path / "ttyKEG", watchdog_s=1.0) as board:
        agent = start_agent(
            agents, master, tmp_path, "keg1", "kegboard", board.link, "--relay-refresh-s", "0.3"
        )
        wait_for(lambda: is_device_online(rpc, "keg1"), what="device online")
        board.auth_token(TOKEN)
        wait_for(lambda: board.relay(0), what="relay0 on")
        # Timed observation: three watchdog periods, the relay never drops.
        with pytest.raises(AssertionError):
            wait_for(lambda: not board.relay(0), timeout=3.0, what="relay0 dropping")
        assert sum(1 for order in board.set_outputs if order == (0, True)) >= 5
        agent.proc.kill()  # nobody refreshes: the board's watchdog closes the valve
        wait_for(lambda: not board.relay(0), timeout=5, what="watchdog closes relay0")


def test_unplug_and_replug_the_board(
    master: MasterProcess, rpc: RpcClient, agents: list[Program], tmp_path: Path,
    board: KegboardSim, tap: None,
) -> None:  # fmt: skip
    start_agent(agents, master, tmp_path, "keg1", "kegboard", board.link)
    wait_for(lambda: is_device_online(rpc, "keg1"), what="device online")
    board.unplug()
    state = wait_for(
        lambda: (s := device_state(rpc, "keg1")) and not s["online"] and s, what="offline"
    )
    assert state["info"]["reason"].startswith("lost")
    board.plug()
    wait_for(lambda: is_device_online(rpc, "keg1"), what="online again")
    wait_for(lambda: board.pings >= 2, what="a ping after the replug")

    board.auth_token(TOKEN)
    wait_for(lambda: board.relay(0), what="relay0 on after the replug")
    pour = pour_and_wait(rpc, board, 300)
    assert (pour["username"], pour["ticks"]) == ("alice", 300)
    wait_for(lambda: not board.relay(0), what="relay0 off")


# -- the ID-12 reader and the lines driver ----------------------------------------------------


def test_id12_reports_good_frames_only(
    master: MasterProcess, rpc: RpcClient, agents: list[Program], tmp_path: Path
) -> None:
    rpc.call("users.create", username="bob")
    rpc.call("tokens.assign", reader="core.rfid", token="0a1b2c3d4e", username="bob")
    reader = PtyDevice(tmp_path / "ttyRFID")
    reader.open_pty()
    try:
        start_agent(agents, master, tmp_path, "door1", "id12", reader.link)
        wait_for(lambda: is_device_online(rpc, "door1"), what="reader online")
        client = wait_for(
            lambda: rpc.call("clients.list", select="door1")["clients"], what="client"
        )[0]
        assert client["role"] == "auth"
        bad = bytearray(encode_id12("1111111111"))
        bad[11:13] = b"FF"  # wrong checksum
        reader.send(b"noise" + bytes(bad) + encode_id12("0a1b2c3d4e") + encode_id12("00000000c7"))
        presence = wait_for(lambda: rpc.call("presence.list")["presence"], what="bob present")
        assert [(p["username"], p["agent"], p["reader"]) for p in presence] == [
            ("bob", "door1", "core.rfid")
        ]
        unknown = wait_for(lambda: rpc.call("tokens.list")["unknown"], what="unknown token")
        assert [u["token"] for u in unknown] == ["00000000c7"]
    finally:
        reader.close_pty()


def test_lines_driver_readings(
    master: MasterProcess, rpc: RpcClient, agents: list[Program], tmp_path: Path
) -> None:
    sensor = PtyDevice(tmp_path / "ttyDIY")
    sensor.open_pty()
    try:
        start_agent(agents, master, tmp_path, "diy1", "lines", sensor.link)
        wait_for(lambda: is_device_online(rpc, "diy1"), what="sensor online")
        sensor.send(
            b"# boot banner\r\nthermo-1=21.5 C\r\nthis is not a reading\n"
            b'{"sensor": "hum-1", "value": 40, "unit": "%"}\nthermo-1=22'
        )
        sensor.send(b".0 C\n")

        def values() -> list[tuple[str, float]]:
            rows = rpc.call("readings.query")["readings"]
            return [(row["sensor"], row["value"]) for row in rows]

        wait_for(lambda: len(values()) == 3, what="three readings")
        assert values() == [("thermo-1", 21.5), ("hum-1", 40.0), ("thermo-1", 22.0)]
    finally:
        sensor.close_pty()
    assert "bad line skipped" in agents[0].log()


def test_readings_wait_for_a_master_that_went_away(agents: list[Program], tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    master = MasterProcess(tmp_path / "var", "--port", str(port), "--heartbeat-s", "0.5")
    sensor = PtyDevice(tmp_path / "ttyDIY")
    sensor.open_pty()
    try:
        agent = start_agent(agents, master, tmp_path, "diy1", "lines", sensor.link)
        with RpcClient(port) as rpc:
            wait_for(lambda: is_device_online(rpc, "diy1"), what="sensor online")
        assert master.stop() == 0
        sensor.send(b"t1=1 C\nt1=2 C\nt1=3 C\n")
        wait_for(lambda: "lost the connection" in agent.log(), what="agent notices")
        master = MasterProcess(tmp_path / "var", "--port", str(port), "--heartbeat-s", "0.5")
        with RpcClient(port) as rpc:
            rows = wait_for(
                lambda: len(r := rpc.call("readings.query", sensor="t1")["readings"]) == 3 and r,
                timeout=20,
                what="queued readings after the reconnect",
            )
            assert [row["value"] for row in rows] == [1.0, 2.0, 3.0]
    finally:
        sensor.close_pty()
        master.stop()


# -- the tail driver ---------------------------------------------------------------------------


def event_texts(rpc: RpcClient) -> list[str]:
    return [event["text"] for event in rpc.call("events.recent", limit=1000)["events"]]


def append(path: Path, lines: list[str]) -> None:
    with path.open("a") as out:
        out.writelines(line + "\n" for line in lines)


def test_tail_across_rotation_and_restart(
    master: MasterProcess, rpc: RpcClient, agents: list[Program], tmp_path: Path
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    path, state = logs / "render.log", tmp_path / "tail.state"
    expected = [f"line {i:02d}" for i in range(1, 31)]
    args = ("--state-file", str(state))
    append(path, expected[:5])
    agent = start_agent(agents, master, tmp_path, "tail1", "tail", path, *args)
    wait_for(lambda: event_texts(rpc) == expected[:5], what="first lines")
    append(path, expected[5:10])
    path.rename(logs / "render.log.1")
    path.write_text("")
    append(path, expected[10:15])
    wait_for(lambda: event_texts(rpc) == expected[:15], what="lines across a rotation")

    append(path, expected[15:18])
    wait_for(lambda: event_texts(rpc) == expected[:18], what="lines before the restart")
    assert agent.stop() == 0
    append(path, expected[18:22])  # written while the agent is down, then rotated again
    path.rename(logs / "render.log.2")
    append(path, expected[22:25])
    start_agent(agents, master, tmp_path, "tail1", "tail", path, *args)
    wait_for(lambda: len(event_texts(rpc)) >= 25, what="lines written while stopped")
    append(path, expected[25:])
    wait_for(lambda: len(event_texts(rpc)) >= 30, what="all lines")
    assert event_texts(rpc) == expected  # each exactly once, in order
    event = rpc.call("events.recent", limit=1)["events"][0]
    assert (event["agent"], event["source"]) == ("tail1", str(path))


def test_tail_regex_makes_readings_and_events(
    master: MasterProcess, rpc: RpcClient, agents: list[Program], tmp_path: Path
) -> None:
    path = tmp_path / "fridge.log"
    path.write_text("")
    regex = r"(?P<sensor>\w+) (?P<kind>temp)=(?P<value>[-\d.]+)(?P<unit>C)|ALARM (?P<what>\w+)"
    start_agent(
        agents, master, tmp_path, "fridge", "tail", path,
        "--tail-regex", regex, "--state-file", str(tmp_path / "state"),
    )  # fmt: skip
    append(path, ["boot ok", "probe1 temp=3.5C", "ALARM door_open", "chatter"])
    readings = wait_for(lambda: rpc.call("readings.query")["readings"], what="reading")
    assert [(r["sensor"], r["kind"], r["value"], r["unit"]) for r in readings] == [
        ("probe1", "temp", 3.5, "C")
    ]
    events = wait_for(lambda: rpc.call("events.recent")["events"], what="event")
    assert [(e["text"], e["fields"]) for e in events] == [
        ("ALARM door_open", {"what": "door_open"})
    ]


# -- the program -------------------------------------------------------------------------------


def test_bad_flags_exit_2_with_one_line() -> None:
    for args in (
        ["--driver", "kegboard"],
        ["--driver", "nope", "--device", "loop://"],
        ["--driver", "tail", "--device", "x.log", "--tail-regex", "("],
        ["--driver", "lines", "--device", "loop://", "--tail-regex", "x"],
        ["--driver", "kegboard", "--device", "loop://", "--baud", "0"],
    ):
        result = subprocess.run(
            [sys.executable, str(ROOT / "hwagent.py"), *args],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert result.returncode == 2, args
        assert result.stderr.count("\n") == 1 and "error" in result.stderr, result.stderr


def test_sigint_stops_cleanly(
    master: MasterProcess, rpc: RpcClient, agents: list[Program], tmp_path: Path
) -> None:
    agent = start_agent(agents, master, tmp_path, "loop1", "kegboard", "loop://")
    wait_for(lambda: is_device_online(rpc, "loop1"), what="loop device online")
    agent.signal(signal.SIGINT)
    assert agent.proc.wait(15) == 0
    wait_for(
        lambda: not rpc.call("clients.list", select="loop1")["clients"][0]["online"],
        what="agent offline",
    )
