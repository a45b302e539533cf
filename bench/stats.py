"""Bench: `stats.get` and `sessions.list` with 100,000 pours (issue 15: stats.get < 10 ms).

    python bench/stats.py [--pours 100000]

In-process: the real PourStats (farmhand/master/devices/stats.py) fed `--pours` pours of 20
users on 10 kegs over a year, then timed: the replay at start, one `add` per pour, and `get`
for the system, a keg and a user (the method's work: a few counters, no scan). Prints a
readable block and one JSON line; exits 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from farmhand.master.devices.stats import PourStats
from models.devicestore import PourRecord

TARGET_GET_MS = 10.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pours", type=int, default=100_000)
    args = parser.parse_args()
    rng = random.Random(15)
    start = 1.7e9
    pours = []
    for n in range(1, args.pours + 1):
        # Evenings of pours minutes apart, a day or more between them: many sessions.
        start += rng.expovariate(1 / 300) if rng.random() < 0.95 else 86_400 * rng.uniform(1, 3)
        user = None if rng.random() < 0.1 else f"user{rng.randrange(20)}"
        ml = rng.uniform(50, 600)
        pours.append(PourRecord(n, "tap1", 1 + n % 10, user, int(ml * 2.7), ml, start, start + 20))
    began = time.perf_counter()
    stats = PourStats()
    stats.load(pours)
    replay_s = time.perf_counter() - began
    figures = {"pours": args.pours, "replay_s": round(replay_s, 3)}
    figures["add_us"] = round(replay_s / args.pours * 1e6, 2)
    for name, scope in (
        ("system", ("system", None)),
        ("keg", ("keg", 3)),
        ("user", ("user", "user7")),
    ):
        began = time.perf_counter()
        for _ in range(100):
            orjson.dumps(stats.get(scope))
        figures[f"get_{name}_ms"] = round((time.perf_counter() - began) / 100 * 1000, 4)
    began = time.perf_counter()
    orjson.dumps(stats.session_list(50))
    figures["sessions_list_50_ms"] = round((time.perf_counter() - began) * 1000, 4)
    figures["sessions"] = len(stats.sessions)
    worst = max(figures[f"get_{n}_ms"] for n in ("system", "keg", "user"))
    figures["target_get_ms"] = TARGET_GET_MS
    figures["pass"] = worst < TARGET_GET_MS
    print(f"stats bench: {args.pours:,} pours, {figures['sessions']:,} sessions")
    print(f"  replay at start     {replay_s:.3f} s  ({figures['add_us']} µs per pour)")
    for name in ("system", "keg", "user"):
        print(f"  stats.get {name:<8}  {figures[f'get_{name}_ms']} ms")
    verdict = "PASS" if figures["pass"] else "MISS"
    print(f"  target              < {TARGET_GET_MS:g} ms: {verdict}")
    print(orjson.dumps(figures).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
