"""The `lines` driver's format for DIY sensors: one reading per line, text in, values out.

A line is `name=value [unit]` (`thermo-1=21.5 C`, `hum=40%`, `flow0=1234 ticks`) or a JSON
object (`{"sensor": "thermo-1", "value": 21.5, "unit": "C"}` or `{"meter": "flow0",
"ticks": 1234}`). `parse_sensor_line` returns a `Reading`, a `MeterUpdate`, or None for blank
lines and `#` comments; anything else raises `ProtocolError` (reason `bad_line`).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, NoReturn

from protocol.errors import ErrorCode, ProtocolError

MAX_LINE_CHARS = 1024
MAX_UNIT_CHARS = 32
TICKS_UNIT = "ticks"

NAME = re.compile(r"[A-Za-z0-9._:-]{1,64}")
# name, `=`, a decimal number, then an optional unit, which may follow the number directly
# (`40%`) but cannot start like a number (so `1.2.3` is an error, not 1.2 in unit `.3`).
TEXT_LINE = re.compile(
    r"(?P<name>[^=\s]+)[ \t]*=[ \t]*"
    r"(?P<number>[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)"
    r"(?:[ \t]*(?P<unit>[^\s\d.+-]\S*))?"
)
INTEGER = re.compile(r"\+?\d+")

# unit as written → (kind, unit as stored)
_UNITS: dict[str, tuple[str, str]] = {
    "C": ("temperature", "C"),
    "°C": ("temperature", "C"),
    "degC": ("temperature", "C"),
    "F": ("temperature", "F"),
    "°F": ("temperature", "F"),
    "degF": ("temperature", "F"),
    "K": ("temperature", "K"),
    "%": ("humidity", "%"),
    "%RH": ("humidity", "%RH"),
    "hPa": ("pressure", "hPa"),
    "Pa": ("pressure", "Pa"),
    "bar": ("pressure", "bar"),
    "psi": ("pressure", "psi"),
    "V": ("voltage", "V"),
    "A": ("current", "A"),
    "W": ("power", "W"),
    "lux": ("light", "lux"),
}


@dataclass(frozen=True, slots=True)
class Reading:
    """One sensor value; `kind` comes from the unit unless a JSON line names it."""

    sensor: str
    kind: str
    value: float
    unit: str


@dataclass(frozen=True, slots=True)
class MeterUpdate:
    """A flow meter's running tick total, as the `meter.update` method takes it."""

    meter: str
    ticks: int


def parse_sensor_line(line: str) -> Reading | MeterUpdate | None:
    """The reading on one line (its line ending may be left on). None for a blank line or a
    `#` comment; ProtocolError(INVALID_PARAMS, reason `bad_line`) for anything else."""
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    if len(text) > MAX_LINE_CHARS:
        _bad(f"line longer than {MAX_LINE_CHARS} characters")
    if text.startswith("{"):
        return _parse_json(text)
    return _parse_text(text)


def _parse_text(text: str) -> Reading | MeterUpdate:
    match = TEXT_LINE.fullmatch(text)
    if match is None:
        _bad(f"expected `name=value [unit]` or a JSON object, got {text[:80]!r}")
    name = _name(match["name"], "name")
    number, unit = match["number"], match["unit"] or ""
    if unit == TICKS_UNIT:
        if INTEGER.fullmatch(number) is None:
            _bad(f"{name}: ticks must be a whole number >= 0, got {number!r}")
        return MeterUpdate(name, int(number))
    return _reading(name, _finite(float(number), name), unit, kind=None)


def _parse_json(text: str) -> Reading | MeterUpdate:
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError) as exc:
        _bad(f"not valid JSON: {exc}")
    if not isinstance(obj, dict):
        _bad("a JSON line must be an object")
    if "meter" in obj and "sensor" in obj:
        _bad('a JSON line has either "sensor" or "meter", not both')
    if "meter" in obj:
        meter = _name(obj["meter"], "meter")
        ticks = obj.get("ticks")
        if isinstance(ticks, bool) or not isinstance(ticks, int) or ticks < 0:
            _bad(f'{meter}: "ticks" must be an integer >= 0, got {ticks!r}')
        return MeterUpdate(meter, ticks)
    if "sensor" not in obj:
        _bad('a JSON line needs "sensor" and "value", or "meter" and "ticks"')
    sensor = _name(obj["sensor"], "sensor")
    value = obj.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float):
        _bad(f'{sensor}: "value" must be a number, got {value!r}')
    unit = obj.get("unit", "")
    if not isinstance(unit, str):
        _bad(f'{sensor}: "unit" must be a string, got {unit!r}')
    kind = obj.get("kind")
    if kind is not None:
        kind = _name(kind, "kind")
    return _reading(sensor, _finite(value, sensor), unit, kind)


def _reading(sensor: str, value: float, unit: str, kind: str | None) -> Reading:
    if len(unit) > MAX_UNIT_CHARS or not unit.isprintable() or any(c.isspace() for c in unit):
        _bad(f"{sensor}: unit must be up to {MAX_UNIT_CHARS} printable characters, no spaces")
    unit_kind, unit = _UNITS.get(unit, ("value", unit))
    return Reading(sensor, kind or unit_kind, value, unit)


def _name(value: Any, what: str) -> str:
    if not isinstance(value, str) or NAME.fullmatch(value) is None:
        _bad(f"{what} must be 1-64 characters of A-Z a-z 0-9 . _ : -, got {value!r:.80}")
    return value


def _finite(value: float, sensor: str) -> float:
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        _bad(f"{sensor}: value must be a finite number")
    return number


def _bad(message: str) -> NoReturn:
    raise ProtocolError(ErrorCode.INVALID_PARAMS, message, "bad_line")
