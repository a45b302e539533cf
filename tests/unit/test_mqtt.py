"""The MQTT bridge's pure parts: URL parsing, topic names, state payloads, discovery configs,
and the link's bounded event queue (no broker: the link is never started)."""

from __future__ import annotations

import orjson
import pytest

from farmhand.master import mqttstate
from farmhand.master.mqtt import MqttLink, parse_mqtt_url
from farmhand.master.mqttstate import Topics

pytestmark = pytest.mark.timeout(10)


def test_urls_give_host_port_tls_and_credentials() -> None:
    target = parse_mqtt_url("mqtt://broker", environ={})
    assert (target.host, target.port, target.tls, target.username) == ("broker", 1883, False, None)
    secure = parse_mqtt_url("mqtts://ha%40home:s3cr%2Ft@10.0.0.2:8884?prefix=barn", environ={})
    assert (secure.port, secure.tls, secure.username, secure.password) == (
        8884, True, "ha@home", "s3cr/t",
    )  # fmt: skip
    assert secure.topics == Topics("barn", "homeassistant")
    from_env = parse_mqtt_url("mqtt://ha@broker", environ={"FARMHAND_MQTT_PASSWORD": "pw"})
    assert from_env.password == "pw"


@pytest.mark.parametrize(
    "url", ["tcp://b:1", "mqtt://:1883", "mqtt://b:x", "mqtt://b?qos=2", "mqtt://b?prefix=a%2Bb"]
)
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="MQTT"):
        parse_mqtt_url(url, environ={})


def test_names_become_safe_topic_levels() -> None:
    assert mqttstate.slug("fridge.temp") == "fridge_temp"
    assert mqttstate.slug("a/b+#c d") == "a_b__c_d"
    assert Topics().state("taps", "tap/1") == "farmhand/taps/tap_1"


def test_tap_state_reads_the_keg_level() -> None:
    view = {
        "name": "tap1",
        "keg": {"beverage": "IPA", "volume_ml": 20000, "remaining_ml": 5000.0},
        "flow": {"volume_ml": 120.0},
        "user": "alice",
        "valve_open": True,
    }
    state = mqttstate.tap_state(view)
    assert state["percent"] == 25.0
    assert state["pouring"] is True and state["flow_ml"] == 120.0
    empty = mqttstate.tap_state({"name": "tap2", "keg": None, "flow": None})
    assert empty["percent"] is None and empty["pouring"] is False


def test_every_entity_gets_a_config_and_gone_ones_are_cleared_by_the_bridge() -> None:
    topics = Topics()
    worker = {"name": "w1", "online": True, "status": "busy", "enabled": True, "running": 1}
    reading = {
        "sensor": "fridge", "kind": "temperature", "value": 4.0, "unit": "C", "time": "t",
        "agent": "keg1",
    }  # fmt: skip
    messages = mqttstate.retained_messages(
        topics, [{"name": "tap1", "keg": None, "flow": None}], [reading], [worker], {"x": 1}
    )
    configs = [t for t in messages if t.startswith("homeassistant/")]
    assert len(configs) == 4 + 1 + 3 + 4  # tap, sensor, worker, jobs
    assert orjson.loads(messages["farmhand/workers/w1"])["busy"] is True
    for topic in configs:
        config = orjson.loads(messages[topic])
        assert config["state_topic"] in messages
        assert config["availability_topic"] == "farmhand/status"


def test_only_pours_arrivals_and_job_ends_are_events() -> None:
    topics = Topics()
    assert mqttstate.event_message(topics, "pours", {"flow": {}, "tap": "tap1"}) is None
    topic, payload = mqttstate.event_message(topics, "pours", {"pour": {"id": 3}}) or ("", b"")
    assert topic == "farmhand/events/pour" and orjson.loads(payload) == {"id": 3}
    assert mqttstate.event_message(topics, "jobs", {"id": 1, "status": "active"}) is None
    assert mqttstate.event_message(topics, "jobs", {"id": 1, "status": "failed"}) is not None


def test_the_event_queue_drops_the_oldest_and_counts() -> None:
    link = MqttLink(parse_mqtt_url("mqtt://127.0.0.1:1", environ={}), "test", event_limit=3)
    for n in range(5):
        link.send_event("farmhand/events/x", str(n).encode())
    assert link.queued == 3 and link.dropped == 2
    assert [payload for _, payload in link._events] == [b"2", b"3", b"4"]
