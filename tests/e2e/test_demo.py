"""The demo (`make demo` runs `python -m farmhand.demo`): it starts every program, and a scripted
swipe and pour through the simulated devices — real pty, real KBSP and ID-12 bytes, the real
drivers — become a pour for the right person, with the valve opened and closed on the way."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from farmhand.client import Client, RpcError
from protocol.errors import ErrorCode
from tests.support import ROOT, ConsoleClient, wait_for

pytestmark = pytest.mark.timeout(120)

ALICE_CARD = "a1ce000001"


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "farmhand.demo", "--port", "0", "--web-port", "0"),
            *("--data-dir", str(tmp_path / "demo"), "--for", "100"),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    seen = b""
    for line in iter(proc.stdout.readline, b""):
        seen += line
        if line.startswith(b"demo ready: master "):
            break
    else:
        stderr = proc.stderr.read().decode() if proc.stderr else ""
        raise AssertionError(f"the demo did not start:\n{seen.decode()}\n{stderr}")
    assert b"sim pour tap1 300" in seen and b"sign in as demo" in seen
    yield proc, line.split()[3].decode()
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def tap(farm: Client, name: str) -> dict[str, Any]:
    taps: list[dict[str, Any]] = farm.call("taps.list")["taps"]
    return next(t for t in taps if t["name"] == name)


def test_the_demo_starts_and_a_simulated_pour_is_recorded_for_the_card_holder(
    demo: tuple[subprocess.Popen[bytes], str],
) -> None:
    proc, master = demo
    with Client(master) as farm:
        online = {c["name"] for c in farm.call("clients.list", select="online")["clients"]}
        assert {"kegboard", "rfid", "demo-worker-1", "demo-worker-2"} <= online
        # The fridge thermometer reports through the Kegboard's KBSP temperature frames.
        wait_for(lambda: farm.call("readings.query", sensor="fridge")["readings"], what="fridge")
        farm.call("sim.swipe", agent="rfid", token=ALICE_CARD)
        wait_for(lambda: tap(farm, "tap1")["user"] == "alice", what="alice at tap1")
        assert tap(farm, "tap1")["valve_open"] is True
        result = farm.call("sim.pour", tap="tap1", ml=300, seconds=0.5)
        assert result["ticks"] == round(300 * 2.724)
        [pour] = wait_for(
            lambda: farm.call("pours.list", tap="tap1")["pours"], timeout=20, what="the pour"
        )
        assert pour["username"] == "alice"
        assert pour["volume_ml"] == pytest.approx(300, abs=0.5)
        keg = tap(farm, "tap1")["keg"]
        assert keg["remaining_ml"] == pytest.approx(19_000 - pour["volume_ml"], abs=0.2)
        wait_for(lambda: not tap(farm, "tap1")["valve_open"], what="the valve to close")
        try:  # the stats of issue 15, where the master has them
            assert farm.call("stats.get")["total_pours"] >= 1
        except RpcError as exc:
            assert exc.code == ErrorCode.METHOD_NOT_FOUND
    # The console drives the same simulator: Bob swipes his card, then pours at tap2.
    host, port = master.rsplit(":", 1)
    console = ConsoleClient(int(port), host)
    assert "token b0b0000002 presented at rfid" in console.command("sim swipe rfid b0b0000002")
    assert "pouring 150 ml at tap2" in console.command("sim pour tap2 150 0.5")
    assert "fridge on kegboard now reads 9" in console.command("sim temp kegboard fridge 9")
    with Client(master) as farm:
        [bobs] = wait_for(
            lambda: farm.call("pours.list", tap="tap2")["pours"], timeout=20, what="tap2's pour"
        )
        assert bobs["username"] == "bob"
        wait_for(
            lambda: (
                farm.call("readings.query", sensor="fridge", limit=1)["readings"][0]["value"] == 9.0
            ),
            what="the warmer fridge",
        )
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0


@pytest.mark.parametrize(
    ("driver", "device", "message"),
    [
        ("lines", "sim://", "sim:// works with --driver kegboard or id12"),
        ("kegboard", "sim://?thermo=fridge:warm", "bad thermo"),
    ],
)
def test_a_device_that_cannot_be_simulated_is_refused(
    driver: str, device: str, message: str
) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "hwagent.py"), "--driver", driver, "--device", device],
        capture_output=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert message in done.stderr.decode(), done.stderr
