"""The `lines` sensor format: text and JSON lines, units to kinds, and every way to be wrong."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.errors import ErrorCode, ProtocolError
from protocol.sensorlines import MeterUpdate, Reading, parse_sensor_line


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("", None),
        ("   \r\n", None),
        ("# a comment", None),
        ("  # indented comment = 3", None),
        ("thermo-1=21.5 C", Reading("thermo-1", "temperature", 21.5, "C")),
        ("thermo-1=21.5 C\r\n", Reading("thermo-1", "temperature", 21.5, "C")),
        ("thermo-1 = -4 °C", Reading("thermo-1", "temperature", -4.0, "C")),
        ("t=21.5degC", Reading("t", "temperature", 21.5, "C")),
        ("t=70.7 F", Reading("t", "temperature", 70.7, "F")),
        ("t=70.7 °F", Reading("t", "temperature", 70.7, "F")),
        ("t=294.65 K", Reading("t", "temperature", 294.65, "K")),
        ("hum=40%", Reading("hum", "humidity", 40.0, "%")),
        ("hum=40.5 %RH", Reading("hum", "humidity", 40.5, "%RH")),
        ("baro=1013.2 hPa", Reading("baro", "pressure", 1013.2, "hPa")),
        ("baro=101320 Pa", Reading("baro", "pressure", 101320.0, "Pa")),
        ("co2.tank=2.1 bar", Reading("co2.tank", "pressure", 2.1, "bar")),
        ("co2:tank=30 psi", Reading("co2:tank", "pressure", 30.0, "psi")),
        ("bus=4.98 V", Reading("bus", "voltage", 4.98, "V")),
        ("pump=0.25 A", Reading("pump", "current", 0.25, "A")),
        ("heater=1.5e3 W", Reading("heater", "power", 1500.0, "W")),
        ("room_light=320 lux", Reading("room_light", "light", 320.0, "lux")),
        ("fan=1200 rpm", Reading("fan", "value", 1200.0, "rpm")),
        ("level=.5", Reading("level", "value", 0.5, "")),
        ("level=+7.", Reading("level", "value", 7.0, "")),
        ("flow0=1234 ticks", MeterUpdate("flow0", 1234)),
        ("flow0=0 ticks", MeterUpdate("flow0", 0)),
        ("x" * 64 + "=1", Reading("x" * 64, "value", 1.0, "")),
        (
            '{"sensor": "thermo-1", "value": 21.5, "unit": "C"}',
            Reading("thermo-1", "temperature", 21.5, "C"),
        ),
        ('{"sensor": "t", "value": 20, "unit": "degC"}', Reading("t", "temperature", 20.0, "C")),
        ('{"sensor": "s", "value": -1.5}', Reading("s", "value", -1.5, "")),
        (
            '{"sensor": "s", "value": 3, "unit": "ppm", "kind": "co2"}',
            Reading("s", "co2", 3.0, "ppm"),
        ),
        (
            '{"sensor": "s", "value": 3, "kind": "gravity", "ts": 1}',
            Reading("s", "gravity", 3.0, ""),
        ),
        ('  {"meter": "flow1", "ticks": 88}  ', MeterUpdate("flow1", 88)),
    ],
)
def test_good_lines(line: str, expected: Reading | MeterUpdate | None) -> None:
    assert parse_sensor_line(line) == expected


@pytest.mark.parametrize(
    ("line", "message_part"),
    [
        ("just words", "expected"),
        ("t=", "expected"),
        ("=21.5 C", "expected"),
        ("t=abc", "expected"),
        ("t=21.5 C extra", "expected"),
        ("t=1.2.3", "expected"),
        ("t=nan", "expected"),
        ("t=inf C", "expected"),
        ("t=1e999 C", "finite"),
        ("bad name=1", "expected"),
        ("b@d=1", "name must be"),
        ("x" * 65 + "=1", "name must be"),
        ("flow0=12.5 ticks", "whole number"),
        ("flow0=-3 ticks", "whole number"),
        ("t=1 " + "u" * 33, "unit must be"),
        ("t=1 C\x00", "unit must be"),
        ("{", "not valid JSON"),
        ('{"sensor": "s", "value": 1} trailing', "not valid JSON"),
        ("[1, 2]", "expected"),
        ('{"value": 1}', "needs"),
        ('{"sensor": "s"}', "must be a number"),
        ('{"sensor": "s", "value": "21.5"}', "must be a number"),
        ('{"sensor": "s", "value": true}', "must be a number"),
        ('{"sensor": "s", "value": NaN}', "finite"),
        ('{"sensor": "s", "value": Infinity}', "finite"),
        ('{"sensor": "s", "value": 1' + "0" * 400 + "}", "finite"),
        ('{"sensor": "s", "value": 1, "unit": 5}', "unit"),
        ('{"sensor": "s", "value": 1, "kind": ""}', "kind must be"),
        ('{"sensor": "", "value": 1}', "sensor must be"),
        ('{"sensor": 7, "value": 1}', "sensor must be"),
        ('{"meter": "flow0"}', "ticks"),
        ('{"meter": "flow0", "ticks": -1}', "ticks"),
        ('{"meter": "flow0", "ticks": 1.0}', "ticks"),
        ('{"meter": "flow0", "ticks": false}', "ticks"),
        ('{"meter": "flow0", "ticks": 1, "sensor": "s"}', "not both"),
        ('{"a": ' + "[" * 2000 + "]" * 2000 + "}", "longer than"),
        ('{"a": ' + "[" * 500 + "]" * 500 + "}", ""),
    ],
)
def test_bad_lines_raise_protocol_error(line: str, message_part: str) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_sensor_line(line)
    assert info.value.code == ErrorCode.INVALID_PARAMS
    assert info.value.reason == "bad_line"
    assert message_part in info.value.message


@given(st.text(max_size=200))
def test_any_text_gives_a_result_or_protocol_error(line: str) -> None:
    try:
        result = parse_sensor_line(line)
    except ProtocolError as exc:
        assert exc.reason == "bad_line"
    else:
        assert result is None or isinstance(result, Reading | MeterUpdate)


NAMES = st.from_regex(r"[A-Za-z0-9._:-]{1,64}", fullmatch=True)


@given(
    NAMES, st.floats(allow_nan=False, allow_infinity=False), st.sampled_from(["", "C", "%", "W"])
)
def test_text_and_json_forms_agree(name: str, value: float, unit: str) -> None:
    text = parse_sensor_line(f"{name}={value!r} {unit}")
    assert text == parse_sensor_line(
        f'{{"sensor": "{name}", "value": {value!r}, "unit": "{unit}"}}'
    )
    assert isinstance(text, Reading)
    assert (text.sensor, text.value) == (name, value)


@given(NAMES, st.integers(min_value=0, max_value=2**64))
def test_meter_lines_in_both_forms(name: str, ticks: int) -> None:
    expected = MeterUpdate(name, ticks)
    assert parse_sensor_line(f"{name}={ticks} ticks") == expected
    assert parse_sensor_line(f'{{"meter": "{name}", "ticks": {ticks}}}') == expected
