"""py-spy on the master during a bench's measured window: self and inclusive time per function.

py-spy is not a project requirement (pip install py-spy); `find_py_spy()` returns None without it.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def find_py_spy() -> str | None:
    exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    return exe if os.access(exe, os.X_OK) else None


class Profiler:
    """py-spy record on the master (raw collapsed stacks, aggregated by function)."""

    def __init__(self, exe: str, out: Path) -> None:
        self.exe, self.out = exe, out
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, pid: int) -> None:
        argv = [self.exe, "record", "--pid", str(pid), "--format", "raw", "--function"]
        argv += ["--rate", "500", "--nonblocking", "--threads", "-o", str(self.out)]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.3)  # attach before the load starts

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def hotspots(self, top: int) -> dict[str, Any]:
        """Self and inclusive time per function, in % of all samples of all threads."""
        own: Counter[str] = Counter()
        inclusive: Counter[str] = Counter()
        threads: Counter[str] = Counter()
        total = 0
        frame_name = re.compile(r"^(.*?) \((.*?)(?::\d+)?\)$")

        def short(frame: str) -> str:
            match = frame_name.match(frame)
            if match is None:
                return frame
            func, path = match.groups()
            for marker in ("site-packages/", str(ROOT) + "/", "/lib/python3"):
                if marker in path:
                    path = path.split(marker, 1)[1]
            return f"{func} ({path})"

        with contextlib.suppress(FileNotFoundError):
            for line in self.out.read_text().splitlines():
                stack, _, count_text = line.rpartition(" ")
                if not stack or not count_text.isdigit():
                    continue
                count = int(count_text)
                frames = stack.split(";")
                total += count
                threads[re.sub(r"^thread \(\w+\):? ?", "", frames[0]) or frames[0]] += count
                names = [short(f) for f in frames[1:]]
                if names:
                    own[names[-1]] += count
                for name in set(names):
                    inclusive[name] += count

        def pct(counter: Counter[str]) -> list[list[Any]]:
            if not total:
                return []
            return [[name, round(100 * n / total, 1)] for name, n in counter.most_common(top)]

        return {
            "samples": total,
            "threads": pct(threads),
            "self": pct(own),
            "total": pct(inclusive),
        }


def print_hotspots(hot: dict[str, Any]) -> None:
    if not hot["samples"]:
        print("\nmaster profile: py-spy recorded nothing (ptrace not allowed?)")
        return
    print()
    print(f"master profile (py-spy, {hot['samples']} samples, % of all samples):")
    print("  threads: " + ", ".join(f"{name} {p}%" for name, p in hot["threads"]))
    print("  self time:")
    for name, p in hot["self"]:
        print(f"    {p:5.1f}%  {name}")
    print("  total time (including callees):")
    for name, p in hot["total"]:
        print(f"    {p:5.1f}%  {name}")
