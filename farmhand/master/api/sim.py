"""Simulated devices (`hwagent.py --device sim://`): pour at a tap, swipe a card at a reader, set
a temperature — for the demo and for trying farmhand without hardware. Each method orders the
agent's simulator, whose bytes then come back through the real driver like a device's."""

from __future__ import annotations

import logging
from typing import Any

import gevent

from protocol.errors import ErrorCode, RpcError, invalid_params, not_found

from ..devices.taps import split_endpoint
from ..services import Services
from ..session import Session
from .base import Access, Args, Method, boolean, collector, number, string

METHODS: list[Method] = []
method = collector(METHODS)

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


@method(
    "sim.pour",
    Access.ADMIN,
    writes=True,
    params=(
        string("tap", "the tap whose meter is on a simulated Kegboard", max_length=64),
        number("ml", "how much to pour", minimum=1, maximum=20_000),
        number("seconds", "how long the pour lasts", 2.0, minimum=0, maximum=60),
    ),
)
def sim_pour(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """Pour `ml` at a tap whose meter is on a simulated Kegboard, over `seconds` (default 2)."""
    tap = services.devices.taps.tap(p["tap"])
    ml, seconds = p["ml"], p["seconds"]
    agent, meter = split_endpoint(tap.rec.meter, "meter")
    ticks = round(ml * tap.rec.ticks_per_ml)
    order = {"meter": meter, "ticks": ticks, "seconds": seconds}
    return {
        "tap": tap.rec.name,
        "agent": agent,
        **order_simulator(services, agent, "sim.pour", order),
    }


@method(
    "sim.swipe",
    Access.ADMIN,
    writes=True,
    params=(
        string("agent", "the simulated hardware or auth agent", max_length=200),
        string("token", "the card's token, hex digits", max_length=64),
        string(
            "reader", "a Kegboard's reader (an ID-12 agent has one)", "core.rfid", max_length=64
        ),
        boolean("present", "false lifts the token (Kegboard readers)", True),
    ),
)
def sim_swipe(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """Present a token (hex) at a simulated reader: an ID-12 agent, or a Kegboard's `reader`."""
    agent, token, reader, present = p["agent"], p["token"], p["reader"], p["present"]
    if not token or any(c not in "0123456789abcdefABCDEF" for c in token):
        raise invalid_params(f"sim.swipe: token must be hex digits, not {token!r}", "bad_token")
    order = {"token": token, "reader": reader, "present": present}
    return {"agent": agent, **order_simulator(services, agent, "sim.swipe", order)}


@method(
    "sim.temperature",
    Access.ADMIN,
    writes=True,
    params=(
        string("agent", "the simulated Kegboard's agent", max_length=200),
        string("sensor", "the thermometer's name", max_length=64),
        number("celsius", "what it reads from now on", minimum=-50, maximum=150),
    ),
)
def sim_temperature(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """Set what a simulated Kegboard's thermometer `sensor` reads from now on."""
    agent, sensor, celsius = p["agent"], p["sensor"], p["celsius"]
    order = {"sensor": sensor, "celsius": celsius}
    return {"agent": agent, **order_simulator(services, agent, "sim.temperature", order)}
