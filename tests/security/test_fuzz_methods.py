"""Fuzzing every JSON-RPC method's params (issue 9, the attack suite): wrong types in every
field, unknown fields, huge and odd values. The oracle: an answer or an error reply, never an
internal error (-32603) and never a traceback in the log.

The methods and their field names come from the method table (each method declares its
params there), so a new method or field is fuzzed the day it is added. In-process
(tests/security/inprocess.py) and bounded: FARMHAND_FUZZ_EXAMPLES raises the number of
examples per method (and makes the run random) for a deeper search.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from farmhand.master.api import METHODS
from farmhand.master.api.permissions import allows
from farmhand.master.session import Session
from protocol.errors import RpcError

from .inprocess import ErrorLog, Farm, RecordingConnection, inprocess_farm, is_internal

pytestmark = pytest.mark.timeout(120)

EXAMPLES = int(os.environ.get("FARMHAND_FUZZ_EXAMPLES", "25"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize="FARMHAND_FUZZ_EXAMPLES" not in os.environ,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# hello and the fuzzing of the sessions themselves are covered by their own tests.
SKIP = {"hello"}


def harvest_field_names() -> set[str]:
    """Every field name a method declares (the method table is what parses them)."""
    return {param.name for entry in METHODS.values() for param in entry.params}


def method_fields(method: str) -> list[str]:
    """The fields `method` declares."""
    return sorted(param.name for param in METHODS[method].params)


FIELDS = sorted(harvest_field_names())
# What JSON can carry: orjson reads integers from -2**63 to 2**64 - 1, and no NaN or infinity.
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.integers(min_value=-3, max_value=5)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | st.sampled_from(["", "all", "1-3", "w1", "fuzz-worker", "core.rfid", "1.1.abc", "*" * 50])
    # Digits that str.isdigit() accepts and int() does not, and numbers too long for int().
    | st.sampled_from(["¹", "1-²", "¹.1.x", "٣", "9" * 5000, "9" * 5000 + ".1.x"])
    | st.text(alphabet="0123456789¹²٣.-,: ", max_size=12)
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
GOOD_LOOKING = st.sampled_from(
    [1, 2, 0, -1, 50, 1.5, "1", "1-3", "w1", "all", "fuzz-worker", "seed", "alice", True, [], {}]
) | st.lists(st.sampled_from(["a", "1", "clients", "{frame}"]), max_size=3)


def wire(params: dict[str, Any]) -> dict[str, Any]:
    return dict(orjson.loads(orjson.dumps(params)))  # exactly what the wire can carry


def params_for(method: str) -> st.SearchStrategy[dict[str, Any]]:
    """Mostly the method's own fields with values of every type (so checks pass often enough
    to reach deeper code), sometimes any field name of any method, or none at all."""
    own = method_fields(method)
    anything = st.dictionaries(
        st.sampled_from(FIELDS) | st.text(max_size=8), JSON_VALUES, max_size=6
    )
    if not own:
        return anything.map(wire)
    typed = st.dictionaries(st.sampled_from(own), GOOD_LOOKING | JSON_VALUES, max_size=len(own))
    return st.one_of(typed, typed, typed, anything).map(wire)


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    with inprocess_farm(tmp_path_factory.mktemp("fuzz")) as farm:
        admin = farm.sessions["admin"]
        farm.call(admin, "jobs.submit", {"name": "seed", "argv": ["true"], "frames": "1-3"})
        farm.call(admin, "users.create", {"username": "alice"})
        yield farm


@pytest.fixture
def error_log() -> Iterator[ErrorLog]:
    handler = ErrorLog()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)


def caller(method: str) -> str:
    entry = METHODS[method]
    return sorted(entry.agents)[0] if entry.agents and not allows(entry, "admin") else "admin"


def test_the_field_harvest_finds_the_methods_fields() -> None:
    assert {"select", "job_id", "argv", "frames", "topics", "attempt", "ticks", "role"} <= set(
        FIELDS
    )
    assert {"name", "argv", "frames", "chunk", "env"} <= set(method_fields("jobs.submit"))
    assert method_fields("clients.disable") == ["select"]


@pytest.mark.parametrize("method", sorted(set(METHODS) - SKIP))
def test_no_params_can_make_a_method_fail_inside(
    farm: Farm, error_log: ErrorLog, method: str
) -> None:
    session = farm.sessions[caller(method)]

    @FUZZ
    @given(params=params_for(method))
    def attempt(params: dict[str, Any]) -> None:
        try:
            farm.call(session, method, params)
        except RpcError as exc:
            assert not is_internal(exc), f"{method}({params!r}) → {exc.message}"
        assert not error_log.records, f"{method}({params!r}) logged:\n{error_log.text()}"

    attempt()


def test_the_fuzzer_reaches_past_the_params_checks(farm: Farm) -> None:
    """A sanity check that the harness is live: good params do work."""
    admin = farm.sessions["admin"]
    # The seed job may be gone by now: the fuzzer cancels and deletes jobs 1, 2, … too.
    job = farm.call(admin, "jobs.submit", {"name": "sanity", "argv": ["true"]})
    assert farm.call(admin, "jobs.get", {"job_id": job["job_id"]})["name"] == "sanity"
    assert farm.call(farm.sessions["worker"], "heartbeat", {"running": []}) is None


# -- wrong values in every field: each field of a good call replaced in turn ------------------

GOOD_CALLS: dict[str, dict[str, Any]] = {
    "alerts.create": {"kind": "above", "target": "t", "value": 5.0, "minutes": 1},
    "alerts.delete": {"id": 1},
    "audit.list": {"limit": 5, "since": "2020-01-01T00:00:00Z"},
    "clients.disable": {"select": "nobody-*"},
    "clients.enable": {"select": "fuzz-*"},
    "clients.forget": {"name": "nobody"},
    "jobs.delete": {"job_id": 424242},
    "clients.get": {"name": "nobody"},
    "clients.stop": {"select": "nobody-*", "when": "idle"},
    "clients.restart": {"select": "nobody-*", "when": "now"},
    "clients.schedule": {"select": "nobody-*", "schedule": "mon-fri 09:00-19:00"},
    "clients.prune": {"offline_for_s": 1e9},
    "clients.list": {"select": "all"},
    "device.status": {"device": "x", "online": True, "info": {}},
    "event.report": {"source": "s", "text": "t", "fields": {}},
    "events.recent": {"limit": 5},
    "heartbeat": {"running": []},
    "hello": {"role": "worker", "name": "h1", "proto": 1, "info": {}, "attempts": []},
    "jobs.cancel": {"job_id": 1},
    "jobs.get": {"job_id": 1},
    "jobs.list": {"status": "queued", "limit": 5, "offset": 0},
    "jobs.pause": {"job_id": 1},
    "jobs.preview": {"job_id": 1},
    "jobs.previews": {"job_ids": [1, 2], "limit": 5},
    "jobs.requeue": {"job_id": 1},
    "jobs.resume": {"job_id": 1},
    "jobs.set_priority": {"job_id": 1, "priority": 10},
    "jobs.submit": {"name": "f", "argv": ["true"], "frames": "1-2", "chunk": 1, "env": {}},
    "keys.create": {"role": "worker", "name": "k1", "label": "x"},
    "keys.revoke": {"key_id": "000000000000"},
    "kegs.end": {"tap": "t1"},
    "kegs.list": {"active": True},
    "kegs.start": {"tap": "t1", "beverage": "IPA", "volume_ml": 1000},
    "meter.update": {"meter": "flow0", "ticks": 5},
    "pours.list": {"tap": "t1", "username": "alice", "limit": 5},
    "pours.cancel": {"id": 1},
    "pours.update": {"id": 1, "username": "alice", "volume_ml": 300, "spill": False},
    "sensors.place": {"sensor": "t", "tap": "t1", "fridge": "f1"},
    "procs.list": {"node": "fuzz-node"},
    "procs.reload": {"node": "fuzz-node"},
    "procs.restart": {"node": "fuzz-node", "agent": "a"},
    "procs.start": {"node": "fuzz-node", "agent": "a"},
    "procs.stop": {"node": "fuzz-node", "agent": "a"},
    "procs.update": {"procs": [{"agent": "a", "state": "running", "pid": 1}]},
    "sessions.list": {"limit": 5},
    "stats.get": {"username": "fuzz-user"},
    "sim.pour": {"tap": "tap1", "ml": 300, "seconds": 1},
    "sim.swipe": {"agent": "rfid", "token": "a1ce000001", "reader": "core.rfid", "present": True},
    "sim.temperature": {"agent": "kegboard", "sensor": "fridge", "celsius": 4.5},
    "reading": {"sensor": "t", "kind": "temperature", "value": 20.0, "unit": "C"},
    "readings.query": {"sensor": "t", "since": "2020-01-01T00:00:00Z", "limit": 5},
    "subscribe": {"topics": ["clients"]},
    "taps.configure": {"tap": "t1", "meter": "fuzz-hardware.flow0", "idle_s": 5},
    "task.finished": {"attempt": "1.1.abc", "exit_code": 0, "error": None, "duration_s": 0.1},
    "task.output": {"attempt": "1.1.abc", "data": "x"},
    "task.preview": {
        "task_id": 1,
        "frame": 1,
        "content_type": "image/png",
        "width": 10,
        "height": 10,
        "data": "iVBORw0KGgo=",  # the PNG signature
    },
    "task.progress": {"attempt": "1.1.abc", "percent": 5},
    "task.started": {"attempt": "1.1.abc", "pid": 1},
    "tasks.list": {"job_id": 1},
    "tasks.log": {"task_id": 1, "offset": 0, "limit": 10},
    "tasks.requeue": {"task_id": 1},
    "token.update": {"reader": "core.rfid", "token": "ab12", "present": True},
    "tokens.assign": {"reader": "core.rfid", "token": "ab12", "username": "alice"},
    "tokens.revoke": {"reader": "core.rfid", "token": "ab12"},
    "unsubscribe": {"topics": ["clients"]},
    "users.authenticate": {"username": "alice", "password": "wrong"},
    "users.create": {"username": "u1", "display_name": "U", "admin": False},
    "webhooks.create": {"url": "http://127.0.0.1:9/fuzz", "events": ["job.failed"], "secret": "s"},
    "webhooks.delete": {"id": 1},
}
HOSTILE: list[Any] = [
    None, True, 0, -1, 2**31, 2**63 - 1, 2**63, 2**64 - 1, -(2**63), 1.5, -0.0, 1e308, -1e308,
    "", "¹", "٣", "9" * 5000, "x" * 20_000, "\x00", "a\nb", "é\u202e", "{frame}", "fhk_x_y",
    [], [None], ["¹"], [[[]]], [1] * 2000, {}, {"a": None}, {"": []}, {"x" * 300: 1},
    "2020-13-45T99:99:99Z", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00",
]  # fmt: skip


def test_every_method_has_a_good_call_or_takes_no_params() -> None:
    for method in METHODS:
        assert method in GOOD_CALLS or not method_fields(method), f"add {method} to GOOD_CALLS"


@pytest.mark.parametrize("method", sorted(METHODS))
def test_a_wrong_value_in_any_field_is_an_error_reply(
    farm: Farm, error_log: ErrorLog, method: str
) -> None:
    good = GOOD_CALLS.get(method, {})
    fields = sorted(set(good) | set(method_fields(method)))
    failures = []
    for field in fields:
        for value in HOSTILE:
            params = wire({**good, field: value})
            session = farm.sessions[caller(method)]
            if method == "hello":
                session = Session("10.7.7.7", 9, "rpc", trusted=True)
                RecordingConnection(session)
            try:
                farm.call(session, method, params)
            except RpcError as exc:
                if is_internal(exc):
                    failures.append(f"{field}={value!r:.60} → {exc.message}")
            except Exception as exc:
                failures.append(f"{field}={value!r:.60} → {type(exc).__name__}: {exc}")
            if error_log.records:
                failures.append(f"{field}={value!r:.60} logged:\n{error_log.text()}")
                error_log.records.clear()
    assert not failures, f"{method}:\n" + "\n".join(failures)
