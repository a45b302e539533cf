"""The MQTT bridge against a real Mosquitto broker (started here on a free port) and a real
master process: Home Assistant discovery configs, retained state that follows pours and
workers, events, and a broker restart after which everything is published again."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_devices import Board, setup_tap, wait_pours
from tests.mosquitto import Mosquitto, Watcher, find_mosquitto
from tests.support import ROOT, ConsoleClient, MasterProcess, RpcClient, agent, wait_for

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(find_mosquitto() is None, reason="mosquitto missing: make sysdeps"),
]

TAP_CONFIGS = [
    "homeassistant/sensor/farmhand/tap_tap1_remaining/config",
    "homeassistant/sensor/farmhand/tap_tap1_percent/config",
    "homeassistant/sensor/farmhand/tap_tap1_beverage/config",
    "homeassistant/binary_sensor/farmhand/tap_tap1_pouring/config",
]
WORKER_CONFIGS = [
    "homeassistant/binary_sensor/farmhand/worker_render-01_online/config",
    "homeassistant/binary_sensor/farmhand/worker_render-01_busy/config",
    "homeassistant/sensor/farmhand/worker_render-01_running/config",
]
SENSOR_CONFIG = "homeassistant/sensor/farmhand/sensor_fridge_temp/config"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    with Mosquitto(tmp_path / "mosquitto") as server:
        yield server


@pytest.fixture
def hub(tmp_path: Path, broker: Mosquitto) -> Iterator[MasterProcess]:
    process = MasterProcess(tmp_path / "var", "--mqtt", broker.url)
    yield process
    process.stop()


@pytest.fixture
def admin(hub: MasterProcess) -> Iterator[RpcClient]:
    with RpcClient(hub.port) as client:
        yield client


@pytest.fixture
def watcher(broker: Mosquitto) -> Iterator[Watcher]:
    w = Watcher(broker.port)
    yield w
    w.close()


def farm_with_tap_sensor_worker(hub: MasterProcess, admin: RpcClient) -> tuple[Board, RpcClient]:
    setup_tap(admin)
    board = Board(hub.port)
    board.rpc.call("reading", sensor="fridge.temp", kind="temperature", value=3.5, unit="C")
    worker = agent(hub.port, "render-01", role="worker", info={"slots": 2})
    return board, worker


def test_discovery_configs_make_every_tap_sensor_and_worker_an_entity(
    hub: MasterProcess, admin: RpcClient, broker: Mosquitto, watcher: Watcher
) -> None:
    board, worker = farm_with_tap_sensor_worker(hub, admin)
    for topic in [*TAP_CONFIGS, *WORKER_CONFIGS, SENSOR_CONFIG, "farmhand/workers/render-01"]:
        watcher.wait_json(topic)
    # A subscriber that comes later gets everything at once: configs and state are retained.
    late = Watcher(broker.port)
    try:
        for topic in [*TAP_CONFIGS, *WORKER_CONFIGS, SENSOR_CONFIG]:
            late.wait_json(topic)
        remaining = late.json(TAP_CONFIGS[0])
        assert remaining["state_topic"] == "farmhand/taps/tap1"
        assert remaining["unit_of_measurement"] == "mL"
        assert remaining["availability_topic"] == "farmhand/status"
        assert remaining["unique_id"] == "farmhand_tap_tap1_remaining"
        assert remaining["device"]["identifiers"] == ["farmhand_tap_tap1"]
        sensor = late.json(SENSOR_CONFIG)
        assert sensor["device_class"] == "temperature"
        assert sensor["unit_of_measurement"] == "°C"
        assert sensor["state_topic"] == "farmhand/sensors/fridge_temp"
        assert late.json(WORKER_CONFIGS[0])["device_class"] == "connectivity"
        assert late.last["farmhand/status"] == b"online"
        tap = late.wait_json("farmhand/taps/tap1")
        assert tap["beverage"] == "Pale Ale"
        assert tap["remaining_ml"] == 19000
        assert tap["percent"] == 100.0
        assert late.wait_json("farmhand/sensors/fridge_temp")["value"] == 3.5
        assert late.wait_json("farmhand/workers/render-01")["online"] is True
        assert late.wait_json("farmhand/jobs")["tasks_queued"] == 0
        retained = {topic for topic, _, retain in late.messages if retain}
        assert {*TAP_CONFIGS, *WORKER_CONFIGS, SENSOR_CONFIG, "farmhand/taps/tap1"} <= retained
    finally:
        late.close()
        board.close()
        worker.close()


def test_state_follows_a_pour_and_a_worker_going_away(
    hub: MasterProcess, admin: RpcClient, watcher: Watcher
) -> None:
    board, worker = farm_with_tap_sensor_worker(hub, admin)
    watcher.wait_json("farmhand/workers/render-01", lambda w: w["online"])
    board.meter(0)
    assert board.token("a11ce0001") == "alice"
    board.meter(545)  # 200 ml at 2.724 ticks/ml
    watcher.wait_json("farmhand/taps/tap1", lambda t: t["pouring"])
    [pour] = wait_pours(admin, 1)
    tap = watcher.wait_json("farmhand/taps/tap1", lambda t: not t["pouring"])
    assert tap["remaining_ml"] == pytest.approx(19000 - pour["volume_ml"], abs=0.1)
    event = watcher.wait_json("farmhand/events/pour")
    assert event["username"] == "alice"
    assert event["volume_ml"] == pour["volume_ml"]
    assert not any(retain for topic, _, retain in watcher.messages if "/events/" in topic)
    worker.close()
    watcher.wait_json("farmhand/workers/render-01", lambda w: not w["online"])
    offline = watcher.wait_json("farmhand/events/client", lambda e: e["change"] == "offline")
    assert offline["name"] == "render-01"
    board.close()


def test_broker_restart_reconnects_and_publishes_everything_again(
    hub: MasterProcess, admin: RpcClient, broker: Mosquitto, tmp_path: Path
) -> None:
    board, worker = farm_with_tap_sensor_worker(hub, admin)
    first = Watcher(broker.port)
    first.wait_json("farmhand/workers/render-01")
    first.close()
    broker.stop()
    # The master keeps serving while the broker is away, and what changes meanwhile is kept.
    assert admin.call("ping") == "pong"
    board.rpc.call("reading", sensor="fridge.temp", kind="temperature", value=7.25, unit="C")
    admin.call("kegs.end", tap="tap1")
    admin.call("kegs.start", tap="tap1", beverage="Stout", volume_ml=5000)
    broker.start()  # the same port, and no retained messages (persistence off)
    again = Watcher(broker.port)
    try:
        for topic in [*TAP_CONFIGS, *WORKER_CONFIGS, SENSOR_CONFIG]:
            again.wait_json(topic, timeout=40)
        again.wait_json("farmhand/taps/tap1", lambda t: t["beverage"] == "Stout")
        again.wait_json("farmhand/sensors/fridge_temp", lambda r: r["value"] == 7.25)
        wait_for(lambda: again.last.get("farmhand/status") == b"online", what="online again")
        assert "MQTT connected" in hub.log() and "connect 2" in hub.log()
    finally:
        again.close()
        board.close()
        worker.close()


def test_a_master_without_a_broker_keeps_serving(tmp_path: Path) -> None:
    from tests.mosquitto import free_port

    hub = MasterProcess(tmp_path / "var", "--mqtt", f"mqtt://127.0.0.1:{free_port()}")
    try:
        with RpcClient(hub.port) as admin:
            setup_tap(admin)
            assert admin.call("ping") == "pong"
        wait_for(lambda: "MQTT broker" in hub.log() and "unreachable" in hub.log())
    finally:
        hub.stop()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://broker:1883", "expected mqtt://HOST:PORT"),
        ("mqtt://broker:99999", "port"),
        ("mqtt://broker:1883?prefix=a/b", "prefix"),
    ],
)
def test_a_bad_mqtt_url_is_refused_in_one_line(url: str, message: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "master.py"),
            "--port",
            "0",
            "--data-dir",
            str(tmp_path),
            "--mqtt",
            url,
        ],
        capture_output=True,
        timeout=30,
    )
    assert done.returncode == 2
    error = done.stderr.decode().strip()
    assert error.count("\n") == 0 and message in error, error


def test_a_clean_stop_says_offline(tmp_path: Path, broker: Mosquitto, watcher: Watcher) -> None:
    hub = MasterProcess(tmp_path / "var", "--mqtt", broker.url)
    wait_for(lambda: watcher.last.get("farmhand/status") == b"online", what="online")
    assert hub.stop() == 0
    wait_for(lambda: watcher.last.get("farmhand/status") == b"offline", what="offline")
    assert "MQTT connection" not in hub.log()  # it disconnected, it did not lose the broker


# -- the hub's half in-process: what a flush hands over -------------------------------------------
def test_a_flush_hands_over_only_what_changed(tmp_path: Path) -> None:
    from farmhand.master.mqtt import MqttBridge, parse_mqtt_url
    from tests.security.inprocess import inprocess_farm

    with inprocess_farm(tmp_path) as farm:
        bridge = MqttBridge(parse_mqtt_url("mqtt://127.0.0.1:1", environ={}), farm.services, "t")
        link = bridge.link  # never started: what the hub hands over stays in its table

        def handed() -> dict[str, bytes]:
            taken, link._retained_new = link._retained_new, {}
            return taken

        bridge.flush()
        first = handed()
        assert "farmhand/jobs" in first and "farmhand/workers/fuzz-worker" in first
        bridge.flush()
        assert handed() == {}  # nothing changed, nothing handed over
        admin = farm.sessions["admin"]
        farm.call(admin, "taps.configure", {"tap": "t9", "meter": "fuzz-hardware.flow0"})
        bridge.flush()
        assert "homeassistant/sensor/farmhand/tap_t9_remaining/config" in handed()
        farm.call(admin, "kegs.start", {"tap": "t9", "beverage": "Mild", "volume_ml": 9000})
        bridge.flush()
        assert list(handed()) == ["farmhand/taps/t9"]


def test_mqtts_publishes_through_a_tls_listener(tmp_path: Path) -> None:
    """`--mqtt mqtts://…?ca=FILE`: the bridge verifies the broker's certificate (made with
    openssl by contrib/make-farm-ca.sh) and publishes; a subscriber on the plain listener of
    the same broker sees it. The master's `status` (and the console's) has the bridge's
    counters."""
    from tests.tlscerts import make_farm_ca

    certs = make_farm_ca(tmp_path / "ca", "localhost", "127.0.0.1", name="broker")
    with Mosquitto(tmp_path / "mosquitto", tls=(certs.cert, certs.key)) as broker:
        watcher = Watcher(broker.port)
        url = f"mqtts://127.0.0.1:{broker.tls_port}?ca={certs.ca}"
        hub = MasterProcess(tmp_path / "var", "--mqtt", url)
        try:
            with RpcClient(hub.port) as admin:
                setup_tap(admin)
                watcher.wait_json(TAP_CONFIGS[0])
                assert watcher.last["farmhand/status"] == b"online"
                mqtt = admin.call("status")["mqtt"]  # the bridge's counters in `status`
                assert mqtt["broker"] == f"mqtts://127.0.0.1:{broker.tls_port}"
                assert mqtt["mqtt_connected"] is True and mqtt["mqtt_connects"] == 1
            with ConsoleClient(hub.port) as console:
                assert "connected, 1 connects" in console.command("status")
        finally:
            hub.stop()
            watcher.close()
