"""What an agent tells the master about its machine with each heartbeat: CPU count, memory
total and available (Linux /proc/meminfo; absent elsewhere) and the 1/5/15-minute load."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

MEMINFO = Path("/proc/meminfo")


def host_info(meminfo: Path = MEMINFO) -> dict[str, Any]:
    facts: dict[str, Any] = {"cpus": os.cpu_count() or 1}
    memory = read_meminfo(meminfo)
    if "MemTotal" in memory:
        facts["mem_total_bytes"] = memory["MemTotal"]
    if "MemAvailable" in memory:
        facts["mem_available_bytes"] = memory["MemAvailable"]
    with contextlib.suppress(OSError):  # no load average on this platform
        facts["load"] = [round(value, 2) for value in os.getloadavg()]
    return facts


def read_meminfo(path: Path = MEMINFO) -> dict[str, int]:
    """`MemTotal:  16318592 kB` lines → {"MemTotal": bytes}; {} when there is no such file."""
    try:
        text = path.read_text(encoding="ascii", errors="replace")
    except OSError:
        return {}
    values: dict[str, int] = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        fields = rest.split()
        if fields and fields[0].isdigit():
            unit = 1024 if len(fields) > 1 and fields[1].lower() == "kb" else 1
            values[name.strip()] = int(fields[0]) * unit
    return values
