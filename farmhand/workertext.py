"""The words the console and the `farmhand` command both print for worker control: one client
(`clients.get`), stop and restart orders, sleep schedules and bulk forget. Standard library
only (the `farmhand` command runs without gevent)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from farmhand.tables import format_table, plural

GIB = 1 << 30


def host_text(facts: dict[str, Any]) -> str:
    """`cpus 8, memory 7.6 of 15.5 GiB available, load 0.52 0.40 0.33` (what is known)."""
    parts = []
    if "cpus" in facts:
        parts.append(f"cpus {facts['cpus']}")
    if "mem_total_bytes" in facts:
        total = facts["mem_total_bytes"] / GIB
        if "mem_available_bytes" in facts:
            parts.append(f"memory {facts['mem_available_bytes'] / GIB:.1f} of {total:.1f} GiB free")
        else:
            parts.append(f"memory {total:.1f} GiB")
    if "load" in facts:
        parts.append("load " + " ".join(f"{value:.2f}" for value in facts["load"]))
    return ", ".join(parts) or "not reported"


def client_text(client: dict[str, Any], ago: Callable[[str | None], str]) -> str:
    stopping = client.get("stopping")
    schedule = client.get("schedule")
    lines = [
        f"{client['name']} ({client['role']} on {client['host'] or '?'}): {client['status']}"
        + ("" if client["enabled"] else ", DISABLED")
        + (f", {stopping['action']} ordered ({stopping['when']})" if stopping else ""),
        f"last seen: {'now' if client['online'] else ago(client['last_seen'])}; "
        f"first seen: {ago(client.get('first_seen'))}",
        f"slots {client['slots']}, tags {','.join(client['tags']) or '-'}, "
        f"running {len(client['running'])}",
        "schedule: "
        + (
            f"{schedule} ({'asleep now' if client.get('asleep') else 'awake now'})"
            if schedule
            else "none"
        ),
        f"host: {host_text(client.get('host_info') or {})}",
    ]
    blocklists = client.get("blocklists") or []
    if blocklists:
        lines.append(
            "blocklisted by: "
            + ", ".join(
                f"job {b['job_id']} ({b['failures']} failures{'' if b['blocked'] else ', not yet'})"
                for b in blocklists
            )
        )
    tasks = client.get("tasks") or []
    if tasks:
        lines.append(f"recent tasks ({len(tasks)}):")
        lines.append(
            format_table(
                ["task", "job", "frames", "status", "exit", "finished", "error"],
                [
                    [
                        task["id"],
                        task["job_id"],
                        task["frames"] or "-",
                        task["status"],
                        "-" if task["exit_code"] is None else task["exit_code"],
                        task["finished"] or "-",
                        task["error"] or "",
                    ]
                    for task in tasks
                ],
            )
        )
    return "\n".join(lines)


def stop_text(verb: str, selector: str, result: dict[str, Any]) -> str:
    ordered, skipped = result["ordered"], result["skipped"]
    if not ordered and not skipped:
        return f"no client matches {selector!r}: nothing to {verb}"
    lines = []
    if ordered:
        lines.append(f"{verb} ({result['when']}) ordered: {', '.join(ordered)}")
    if result["requeued"]:
        lines.append(f"requeued {plural(len(result['requeued']), 'task')}")
    if skipped:
        lines.append(f"skipped (not an online worker): {', '.join(skipped)}")
    return "\n".join(lines)


def schedule_text(selector: str, result: dict[str, Any]) -> str:
    matched, changed = result["matched"], result["changed"]
    if not matched:
        return f"no client matches {selector!r}: no schedule changed"
    what = f"schedule {result['schedule']!r}" if result["schedule"] else "no schedule"
    lines = [f"{what} for {', '.join(changed)}"] if changed else []
    unchanged = [name for name in matched if name not in changed]
    if unchanged:
        lines.append(f"already so: {', '.join(unchanged)}")
    return "\n".join(lines)


def prune_text(result: dict[str, Any]) -> str:
    forgotten = result["forgotten"]
    if not forgotten:
        return f"no client offline longer than {result['offline_for_s']:g}s: none forgotten"
    return f"forgot {plural(len(forgotten), 'client')}: {', '.join(forgotten)}"
