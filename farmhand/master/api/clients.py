"""Client methods: list, get, enable, disable, schedule, stop, restart, forget, prune."""

from __future__ import annotations

from typing import Any

from protocol.errors import invalid_params, not_found
from protocol.schedule import ScheduleError, parse_schedule
from protocol.selector import parse_selector
from protocol.times import iso_utc

from ..jobs.views import task_view
from ..registry import RuntimeClient
from ..services import Services
from ..session import Session
from .base import Access, Args, Method, collector, integer, number, string

METHODS: list[Method] = []
method = collector(METHODS)

SELECTOR_SUMMARY = "a client selector, e.g. `online role=worker render-0*`"
WHEN_SUMMARY = "`now`: kill its running tasks (they are requeued); `idle`: let them finish first"
SCHEDULE_SUMMARY = (
    "weekly windows without new work, comma-separated, in the master's local time, e.g. "
    "`mon-fri 09:00-19:00, sat-sun 22:00-06:00`; null clears it"
)
HISTORY_LIMIT = 50


def _row(services: Services, client: RuntimeClient) -> dict[str, Any]:
    return client.view(services.clock.wall())


@method("clients.list", Access.READ, params=(string("select", SELECTOR_SUMMARY, "all"),))
def clients_list(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """Clients matching a selector (default `all`), sorted by name."""
    selector = parse_selector(p["select"])
    chosen = services.registry.select(selector)
    chosen.sort(key=lambda client: client.name)
    return {"clients": [_row(services, client) for client in chosen]}


@method(
    "clients.get",
    Access.READ,
    params=(
        string("name", "a client name"),
        integer("limit", "at most this many recent tasks", HISTORY_LIMIT, minimum=1, maximum=1000),
    ),
)
def clients_get(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """One client: its row, host facts (CPU count, memory, load), first seen, its recent
    tasks and failures (workers) and the jobs that blocklisted it."""
    client = services.registry.get(p["name"])
    if client is None:
        raise not_found(f"no client named {p['name']!r}", "no_such_client")
    farm = services.farm
    now = services.clock.wall()
    history = [task_view(task, now) for task in farm.worker_history(client.name, p["limit"])]
    return {
        **_row(services, client),
        "host_info": client.host_info,
        "first_seen": iso_utc(client.first_seen),
        "tasks": history,
        "failures": [task for task in history if task["status"] == "failed" or task["error"]],
        "blocklists": farm.blocklisted_on(client.name),
    }


def _set_enabled(services: Services, p: Args, enabled: bool) -> dict[str, Any]:
    selector = parse_selector(p["select"])
    matched, changed = services.registry.set_enabled(selector, enabled)
    return {"matched": sorted(matched), "changed": sorted(changed)}


@method("clients.enable", Access.ADMIN, writes=True, params=(string("select", SELECTOR_SUMMARY),))
def clients_enable(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """Enable the selected clients: workers among them get new tasks again."""
    return _set_enabled(services, p, True)


@method("clients.disable", Access.ADMIN, writes=True, params=(string("select", SELECTOR_SUMMARY),))
def clients_disable(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """Disable the selected clients: no new task for them; running work finishes."""
    return _set_enabled(services, p, False)


@method(
    "clients.schedule",
    Access.ADMIN,
    writes=True,
    params=(
        string("select", SELECTOR_SUMMARY),
        string("schedule", SCHEDULE_SUMMARY, None, max_length=1000),
    ),
)
def clients_schedule(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """Set or clear the sleep schedule of the selected clients: inside its windows a worker
    takes no new task (running ones finish)."""
    selector = parse_selector(p["select"])
    schedule = None
    if p["schedule"] is not None:
        try:
            schedule = parse_schedule(p["schedule"])
        except ScheduleError as exc:
            raise invalid_params(f"clients.schedule: {exc}", "bad_schedule") from None
    matched, changed = services.registry.set_schedule(selector, schedule)
    return {
        "matched": sorted(matched),
        "changed": sorted(changed),
        "schedule": schedule.text if schedule is not None else None,
    }


def _stop(services: Services, p: Args, action: str) -> dict[str, Any]:
    """Order the selected online workers to stop or restart (others are listed as skipped)."""
    selector = parse_selector(p["select"])
    when = p["when"]
    ordered, skipped, requeued = [], [], []
    for client in sorted(services.registry.select(selector), key=lambda c: c.name):
        if client.role != "worker" or not client.online or client.connection is None:
            skipped.append(client.name)
            continue
        services.registry.begin_stop(client, action, when)
        requeued += services.farm.stop_worker(client, action, when)
        ordered.append(client.name)
    return {"ordered": ordered, "skipped": skipped, "requeued": sorted(requeued), "when": when}


STOP_PARAMS = (
    string("select", SELECTOR_SUMMARY),
    string("when", WHEN_SUMMARY, "idle", choices=("now", "idle")),
)


@method("clients.stop", Access.ADMIN, writes=True, params=STOP_PARAMS)
def clients_stop(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """Stop the selected online workers: they take no new task and exit (code 76; a node
    leaves them stopped), at once (`now`) or once their running tasks end (`idle`)."""
    return _stop(services, p, "stop")


@method("clients.restart", Access.ADMIN, writes=True, params=STOP_PARAMS)
def clients_restart(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """Restart the selected online workers: like clients.stop, but they exit with code 75,
    which their node (node.py) answers by starting them again."""
    return _stop(services, p, "restart")


@method("clients.forget", Access.ADMIN, writes=True, params=(string("name", "a client name"),))
def clients_forget(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """Remove an offline client from the master and its database."""
    name = p["name"]
    client = services.registry.forget(name)
    services.store.delete_client(client.id)
    return {}


@method(
    "clients.prune",
    Access.ADMIN,
    writes=True,
    params=(
        number(
            "offline_for_s",
            "forget clients offline longer than this many seconds (default: the master's "
            "`prune_offline_s`, 7 days)",
            None,
            minimum=0,
        ),
    ),
)
def clients_prune(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """Forget, in bulk, every client offline longer than `offline_for_s`; online ones stay."""
    offline_for_s = p["offline_for_s"]
    if offline_for_s is None:
        offline_for_s = services.config.prune_offline_s
    forgotten = services.registry.prune(offline_for_s, services.clock.wall())
    for client in forgotten:
        services.store.delete_client(client.id)
    return {
        "forgotten": sorted(client.name for client in forgotten),
        "offline_for_s": offline_for_s,
    }
