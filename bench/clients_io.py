"""Bench: load and save N clients through models.store.Store, as the master does at start/save.

    python bench/clients_io.py [--clients 100000] [--db URL] [--data-dir DIR]

Target: save (all rows changed, one transaction) <= 1.5 x load (query + ClientRecord objects),
both under 3 s. Prints a readable block and one JSON line.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models.db import redact_url
from models.store import ClientRecord, Store

SAVE_OVER_LOAD_TARGET = 1.5
SECONDS_TARGET = 3.0


def make_clients(count: int, now: float) -> list[ClientRecord]:
    return [
        ClientRecord(
            id=i,
            name=f"worker-{i:06d}",
            role="worker" if i % 10 else "hardware",
            host=f"host-{i // 8:05d}.farm.example",
            enabled=i % 17 != 0,
            tags=["linux", "gpu"] if i % 3 == 0 else ["linux"],
            slots=1 + i % 4,
            first_seen=now - 86400.0,
            last_seen=now - float(i % 600),
            info={"pid": 1000 + i, "version": "0.1.0", "python": "3.11.2"},
        )
        for i in range(1, count + 1)
    ]


def run(url: str | None, data_dir: Path, count: int) -> dict[str, object]:
    store = Store(url, data_dir)
    store.open()
    try:
        # Start from an empty table so repeated runs against one database measure the same work.
        store.call(store.db.execute_sql, 'DELETE FROM "client"')
        now = time.time()
        t0 = time.perf_counter()
        store.save_clients(make_clients(count, now))
        initial_insert_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        records = store.load_clients()
        load_s = time.perf_counter() - t0
        assert len(records) == count, (len(records), count)

        # What the master changes between saves: presence times and the hello info.
        later = now + 30.0
        for r in records:
            r.last_seen = later
            r.info["pid"] += 1
        t0 = time.perf_counter()
        store.save_clients(records)
        save_s = time.perf_counter() - t0

        check = store.load_clients()
        assert check[-1].last_seen == later and check[-1].info == records[-1].info
    finally:
        store.close()
    return {
        "backend": store.backend,
        "db": store.description if url is None else redact_url(url),
        "clients": count,
        "initial_insert_s": round(initial_insert_s, 4),
        "load_s": round(load_s, 4),
        "save_s": round(save_s, 4),
        "save_over_load": round(save_s / load_s, 3),
        "ok": save_s <= SAVE_OVER_LOAD_TARGET * load_s and max(load_s, save_s) < SECONDS_TARGET,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=100_000)
    parser.add_argument("--db", default=None, help="database URL (default: SQLite in data dir)")
    parser.add_argument("--data-dir", type=Path, default=None, help="default: a temp dir")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="farmhand-bench-") as tmp:
        result = run(args.db, args.data_dir or Path(tmp), args.clients)
    print(f"backend          {result['backend']}  ({result['db']})")
    print(f"clients          {result['clients']:,}")
    print(f"initial insert   {result['initial_insert_s']:.3f} s")
    print(f"load             {result['load_s']:.3f} s   (one query + ClientRecord objects)")
    print(f"save             {result['save_s']:.3f} s   (every row changed, one transaction)")
    print(
        f"save / load      {result['save_over_load']:.2f}     "
        f"(target <= {SAVE_OVER_LOAD_TARGET}, both < {SECONDS_TARGET:.0f} s: "
        f"{'OK' if result['ok'] else 'MISSED'})"
    )
    print(orjson.dumps(result).decode())
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
