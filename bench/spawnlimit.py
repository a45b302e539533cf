"""The machine's spawn limit and per-process CPU, for `bench/dispatch.py --process`.

The limit is what two plain Python processes reach running `subprocess.run(["true"])` in a loop
for a fixed time, started together: the ceiling any farm that runs each task as a program can
approach on this machine. CPU is read from /proc/PID/stat (utime+stime, and cutime+cstime of
the children the process has reaped), in seconds.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from bench.benchlib import BenchError, read_line

TICKS_PER_S = os.sysconf("SC_CLK_TCK")
SPAWNERS = 2
SPAWN_LIMIT_S = 2.0

# The body of one spawner: ready, wait for "go", spawn for the given seconds, print the count.
SPAWNER = """
import subprocess, sys, time
sys.stdout.write("ready\\n"); sys.stdout.flush()
sys.stdin.readline()
seconds = float(sys.argv[1])
end = time.perf_counter() + seconds
count = 0
while time.perf_counter() < end:
    subprocess.run(["true"], check=True)
    count += 1
sys.stdout.write(f"{count}\\n"); sys.stdout.flush()
"""


def spawn_limit(seconds: float = SPAWN_LIMIT_S, spawners: int = SPAWNERS) -> float:
    """`true` programs per second that `spawners` plain processes run together."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SPAWNER, str(seconds)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        for _ in range(spawners)
    ]
    try:
        for proc in procs:
            read_line(proc.stdout, 30, "a spawner's ready line")
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write(b"go\n")
            proc.stdin.flush()
        total = sum(int(read_line(p.stdout, seconds + 30, "a spawner's count")) for p in procs)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
            if proc.stdin is not None:
                proc.stdin.close()
    return total / seconds


def proc_cpu_s(pid: int) -> tuple[float, float]:
    """(own, reaped children's) CPU seconds of process `pid`, from /proc/PID/stat."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError as exc:
        raise BenchError(f"cannot read /proc/{pid}/stat: {exc}") from None
    fields = stat[stat.rfind(b")") + 2 :].split()
    # Fields 14-17 of proc(5) (utime stime cutime cstime) are 11-14 after "pid (comm)".
    utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
    return (utime + stime) / TICKS_PER_S, (cutime + cstime) / TICKS_PER_S


def cpu_snapshot(pids: list[int]) -> tuple[float, float]:
    own = children = 0.0
    for pid in pids:
        a, b = proc_cpu_s(pid)
        own, children = own + a, children + b
    return own, children


def now_s() -> float:
    return time.perf_counter()
