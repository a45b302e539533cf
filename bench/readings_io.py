"""Bench: sensor readings through models.devicestore.DeviceStore, as the master stores them.

    python bench/readings_io.py [--rows 100000] [--sensors 50] [--db URL] [--data-dir DIR]

Inserts --rows readings with insert_readings at batch sizes 100, 1,000 and 10,000 (one
transaction per batch) into an emptied table, then times the queries the console makes on the
full table: query_readings of one sensor and of all (newest 1,000), a one-hour window of one
sensor, and latest_readings. Target (issue 4): >= 100,000 rows/s on SQLite in batches of 1,000.
Prints a readable block and one JSON line.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models.db import redact_url
from models.devicestore import DeviceStore, ReadingRecord
from models.store import Store

BATCHES = (100, 1000, 10_000)
TARGET_ROWS_PER_S = 100_000
QUERY_REPEATS = 20


def make_readings(count: int, sensors: int, t0: float) -> list[ReadingRecord]:
    """`count` readings of `sensors` sensors, round robin, 0.1 s apart."""
    return [
        ReadingRecord(f"keg{i % sensors}.t0", "temperature", 4.0 + (i % 97) / 10, "C",
                      t0 + i / 10, f"keg{i % sensors}")
        for i in range(count)
    ]  # fmt: skip


def median_ms(fn: Callable[[], Any]) -> float:
    times = []
    for _ in range(QUERY_REPEATS):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return round(statistics.median(times) * 1000, 3)


def run(url: str | None, data_dir: Path, count: int, sensors: int) -> dict[str, Any]:
    store = Store(url, data_dir)
    store.open()
    ds = DeviceStore(store)
    result: dict[str, Any] = {"rows": count, "sensors": sensors}
    try:
        readings = make_readings(count, sensors, 1_700_000_000.0)
        for batch in BATCHES:
            store.call(store.db.execute_sql, 'DELETE FROM "reading"')  # same work each round
            t0 = time.perf_counter()
            for i in range(0, count, batch):
                ds.insert_readings(readings[i : i + batch])
            elapsed = time.perf_counter() - t0
            result[f"insert_{batch}_rows_per_s"] = round(count / elapsed)
        # The table now holds every reading once (the last round): query it.
        last = readings[-1]
        sensor = last.sensor
        one = ds.query_readings(sensor, limit=1000)
        assert one[-1] == last and len(one) == min(1000, count // sensors)
        result["query_sensor_newest_1000_ms"] = median_ms(lambda: ds.query_readings(sensor))
        result["query_all_newest_1000_ms"] = median_ms(lambda: ds.query_readings())
        since = last.time - 3600.0
        result["query_sensor_last_hour_ms"] = median_ms(
            lambda: ds.query_readings(sensor, since=since, until=last.time + 1)
        )
        assert len(ds.latest_readings()) == min(sensors, count)
        result["latest_readings_ms"] = median_ms(ds.latest_readings)
    finally:
        store.close()
    result["backend"] = store.backend
    result["db"] = store.description if url is None else redact_url(url)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--sensors", type=int, default=50)
    parser.add_argument("--db", default=None, help="database URL (default: SQLite in data dir)")
    parser.add_argument("--data-dir", type=Path, default=None, help="default: a temp dir")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="farmhand-bench-") as tmp:
        r = run(args.db, args.data_dir or Path(tmp), args.rows, args.sensors)
    print(f"backend     {r['backend']}  ({r['db']})")
    print(f"rows        {r['rows']:,} readings of {r['sensors']} sensors")
    for batch in BATCHES:
        rate = r[f"insert_{batch}_rows_per_s"]
        verdict = ""
        if batch == 1000 and r["backend"] == "sqlite":
            verdict = "  PASS" if rate >= TARGET_ROWS_PER_S else "  MISS"
        print(f"insert      batch {batch:>6,}  {rate:>10,} rows/s{verdict}")
    for name in (
        "query_sensor_newest_1000",
        "query_all_newest_1000",
        "query_sensor_last_hour",
        "latest_readings",
    ):
        print(f"{name:<26}  {r[name + '_ms']:>8.3f} ms (median of {QUERY_REPEATS})")
    print(orjson.dumps(r).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
