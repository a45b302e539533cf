"""Simulated devices (`hwagent.py --device sim://`): pour at a tap, swipe a card at a reader, set
a temperature — for the demo and for trying farmhand without hardware. Each method orders the
agent's simulator, whose bytes then come back through the real driver like a device's."""

from __future__ import annotations

import logging
from typing import Any

import gevent

from protocol.errors import ErrorCode, RpcError, invalid_params, not_found

from ..devices.taps import split_endpoint
from ..params import Params
from ..services import Services
from ..session import Session
from .base import Access, method

log = logging.getLogger(__name__)

SIM_ORDER_TIMEOUT_S = 5.0
DEVICE_ROLES = ("hardware", "auth")


def order_simulator(services: Services, agent: str, order: str, params: dict[str, Any]) -> Any:
    client = services.registry.get(agent)
    if client is None or client.role not in DEVICE_ROLES:
        raise not_found(f"no hardware agent named {agent!r}", "no_such_agent")
    if not client.online or client.connection is None:
        raise RpcError(ErrorCode.CONFLICT, f"agent {agent!r} is offline", "offline")
    log.info("ordering %s on %s: %s", order, agent, params)
    try:
        return client.connection.call(order, params, timeout=SIM_ORDER_TIMEOUT_S)
    except gevent.Timeout:
        raise RpcError(
            ErrorCode.CONFLICT, f"agent {agent!r} did not answer {order} in time", "timeout"
        ) from None
    except RpcError as exc:
        if exc.code == ErrorCode.METHOD_NOT_FOUND:
            raise RpcError(
                ErrorCode.CONFLICT,
                f"agent {agent!r} is not simulated (start it with --device sim://)",
                "not_simulated",
            ) from None
        raise


@method("sim.pour", Access.ADMIN, writes=True)
def sim_pour(services: Services, session: Session, p: Params) -> dict[str, Any]:
    """Pour `ml` at a tap whose meter is on a simulated Kegboard, over `seconds` (default 2)."""
    tap = services.devices.taps.tap(p.text("tap", max_length=64))
    ml = p.number("ml", minimum=1, maximum=20_000)
    seconds = p.number("seconds", 2.0, minimum=0, maximum=60)
    p.finish()
    agent, meter = split_endpoint(tap.rec.meter, "meter")
    ticks = round(ml * tap.rec.ticks_per_ml)
    order = {"meter": meter, "ticks": ticks, "seconds": seconds}
    return {
        "tap": tap.rec.name,
        "agent": agent,
        **order_simulator(services, agent, "sim.pour", order),
    }


@method("sim.swipe", Access.ADMIN, writes=True)
def sim_swipe(services: Services, session: Session, p: Params) -> dict[str, Any]:
    """Present a token (hex) at a simulated reader: an ID-12 agent, or a Kegboard's `reader`."""
    agent = p.text("agent", max_length=200)
    token = p.text("token", max_length=64)
    reader = p.text("reader", "core.rfid", max_length=64)
    present = p.boolean("present", True)
    p.finish()
    if not token or any(c not in "0123456789abcdefABCDEF" for c in token):
        raise invalid_params(f"sim.swipe: token must be hex digits, not {token!r}", "bad_token")
    order = {"token": token, "reader": reader, "present": present}
    return {"agent": agent, **order_simulator(services, agent, "sim.swipe", order)}


@method("sim.temperature", Access.ADMIN, writes=True)
def sim_temperature(services: Services, session: Session, p: Params) -> dict[str, Any]:
    """Set what a simulated Kegboard's thermometer `sensor` reads from now on."""
    agent = p.text("agent", max_length=200)
    sensor = p.text("sensor", max_length=64)
    celsius = p.number("celsius", minimum=-50, maximum=150)
    p.finish()
    order = {"sensor": sensor, "celsius": celsius}
    return {"agent": agent, **order_simulator(services, agent, "sim.temperature", order)}
